package realserver

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/cluster/gossip"
	"github.com/raftlvs/raftlvs/fsm"
)

// published records what the agent would put in its gossip metadata.
type published struct {
	mu   sync.Mutex
	last map[string]gossip.ServicePort
}

func (p *published) SetHealth(v map[string]gossip.ServicePort) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last = v
	return nil
}

func (p *published) health(service string) gossip.Health {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last[service].Health
}

func TestLocalChecksPublishTheAgentsOwnVerdict(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	status := http.StatusOK
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.WriteHeader(status)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	port := netip.MustParseAddrPort(ln.Addr().String()).Port()

	pub := &published{}
	// The agent checks its own address (loopback here; a real one in production).
	cfg := Config{ID: "rs1", Addr: netip.MustParseAddr("127.0.0.1"), Services: []ServiceSpec{{Name: "web", Weight: 1}}, Logger: slog.New(slog.DiscardHandler)}
	lc, err := NewLocalChecks(cfg, &fsm.HealthCheck{Type: fsm.CheckHTTP, Path: "/", IntervalMS: 100, TimeoutMS: 100, Rise: 1, Fall: 1}, pub, "")
	if err != nil {
		t.Fatal(err)
	}
	// The port comes from the service as the cluster knows it.
	lc.SetServices(map[string]fsm.Service{"web": {Name: "web", Port: port}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- lc.Run(ctx) }()
	defer func() { cancel(); <-done }()

	waitFor := func(what string, want gossip.Health) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); pub.health("web") != want; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: published %v", what, pub.health("web"))
			}
		}
	}
	waitFor("the service answers", gossip.HealthUp)
	mu.Lock()
	status = http.StatusServiceUnavailable
	mu.Unlock()
	waitFor("the service answers 503", gossip.HealthDown)
	pub.mu.Lock()
	reason := pub.last["web"].Reason
	pub.mu.Unlock()
	if reason == "" || len(reason) > gossip.MaxReasonLen {
		t.Errorf("reason %q", reason)
	}
}

func TestLocalChecksRefuseABadSpec(t *testing.T) {
	cfg := Config{ID: "rs1", Addr: netip.MustParseAddr("192.0.2.21"), Services: []ServiceSpec{{Name: "web"}}, Logger: slog.New(slog.DiscardHandler)}
	if _, err := NewLocalChecks(cfg, &fsm.HealthCheck{Type: fsm.CheckTCP, IntervalMS: 10}, &published{}, ""); err == nil {
		t.Fatal("a 10 ms interval was accepted")
	}
}
