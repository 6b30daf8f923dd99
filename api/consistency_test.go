package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// director answers with a fixed version and cluster and records what reads asked for.
type director struct {
	mu           sync.Mutex
	cluster      string
	version      string
	asked        []string // MinVersionHeader of each GET
	clusterAsked []string
}

func (d *director) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r.Method == http.MethodGet {
		d.asked = append(d.asked, r.Header.Get(MinVersionHeader))
		d.clusterAsked = append(d.clusterAsked, r.Header.Get(ClusterHeader))
	}
	w.Header().Set(VersionHeader, d.version)
	w.Header().Set(ClusterHeader, d.cluster)
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/v1/barrier":
		w.Write([]byte(`{"cluster_id":"` + d.cluster + `","version":` + d.version + `}`))
	case "/v1/services":
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"name":"web"}`))
	default:
		w.Write([]byte(`{}`))
	}
}

func (d *director) set(cluster, version string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cluster, d.version = cluster, version
}

func (d *director) lastAsked() (string, string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.asked[len(d.asked)-1], d.clusterAsked[len(d.clusterAsked)-1]
}

func TestReadsAskForTheVersionTheClientLastSaw(t *testing.T) {
	d := &director{cluster: "c1", version: "7"}
	hs := httptest.NewServer(d)
	defer hs.Close()
	c := NewClient(hs.URL)
	ctx := context.Background()
	if _, err := c.State(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _ := d.lastAsked(); v != "" {
		t.Errorf("a new client's first read asked for version %q, want none", v)
	}
	d.set("c1", "12")
	if _, err := c.AddService(ctx, fsm.Service{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.State(ctx); err != nil {
		t.Fatal(err)
	}
	if v, cl := d.lastAsked(); v != "12" || cl != "c1" {
		t.Errorf("the read after a write answered at 12 asked for %q of %q, want 12 of c1", v, cl)
	}
	// Versions only go up: an answer at a lower version does not lower what reads ask.
	d.set("c1", "3")
	c.State(ctx)
	c.State(ctx)
	if v, _ := d.lastAsked(); v != "12" {
		t.Errorf("after an answer at 3, reads ask for %q, want still 12", v)
	}
	// Another cluster under the same address: the old version means nothing there.
	d.set("c2", "2")
	c.State(ctx)
	c.State(ctx)
	if v, cl := d.lastAsked(); v != "2" || cl != "c2" {
		t.Errorf("after an answer of cluster c2 at 2, reads ask for %q of %q, want 2 of c2", v, cl)
	}
	other := NewClient(hs.URL)
	other.ObserveVersion(c.SeenVersion())
	other.State(ctx)
	if v, _ := d.lastAsked(); v != "2" {
		t.Errorf("a client told another's version asked for %q, want 2", v)
	}
}

func TestAConsistentReadBarriersFirstAndReadsAtTheLeadersVersion(t *testing.T) {
	d := &director{cluster: "c1", version: "40"}
	hs := httptest.NewServer(d)
	defer hs.Close()
	c := NewClient(hs.URL)
	c.Consistent = true
	if _, err := c.Services(context.Background()); err != nil {
		t.Fatal(err)
	}
	if v, _ := d.lastAsked(); v != "40" {
		t.Errorf("a consistent read asked for %q, want the barrier's 40", v)
	}
	// A barrier no director can answer fails the read, within ConfirmTimeout.
	unavailable := httptest.NewServer(replyError(503, CodeUnavailable))
	defer unavailable.Close()
	c = NewClient(unavailable.URL)
	c.Consistent, c.Timeout = true, 200*time.Millisecond
	if _, err := c.State(context.Background()); !errors.Is(err, ErrUnconfirmed) || !errors.Is(err, ErrUnavailable) {
		t.Errorf("consistent read with no leader: %v, want ErrUnconfirmed wrapping ErrUnavailable", err)
	}
}

// A director's own data (its timeline, its checks, its kernel's connections) is read
// without a barrier, so that it can be read when there is no leader to confirm with.
func TestAConsistentClientReadsADirectorsOwnDataWithoutABarrier(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("POST /v1/barrier", replyError(503, CodeUnavailable))
	mux.HandleFunc("GET /v1/events", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`{"director":"d1"}`)) })
	mux.HandleFunc("GET /v1/health", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`{}`)) })
	mux.HandleFunc("GET /v1/connections", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`{}`)) })
	hs := httptest.NewServer(mux)
	defer hs.Close()
	c := NewClient(hs.URL)
	c.Consistent, c.Timeout = true, 2*time.Second
	ctx := context.Background()
	if l, err := c.Events(ctx, 0, 0, 0); err != nil || l.Director != "d1" {
		t.Errorf("events with no leader: %+v, %v", l, err)
	}
	if _, err := c.HealthChecks(ctx); err != nil {
		t.Errorf("health checks with no leader: %v", err)
	}
	if _, err := c.Connections(ctx, 0); err != nil {
		t.Errorf("connections with no leader: %v", err)
	}
}
