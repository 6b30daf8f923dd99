package apiserver

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/fsm"
)

// replicate copies the leader's state into the follower, as Raft would have.
func replicate(leader, follower *fakeStore) {
	leader.mu.Lock()
	st := leader.state.Clone()
	leader.mu.Unlock()
	follower.mu.Lock()
	follower.state = st
	follower.mu.Unlock()
}

func TestEveryAdmittedAnswerCarriesTheStateVersion(t *testing.T) {
	store, srv := newTestServer(t)
	store.must(webService)
	rec := request(t, srv, "POST", "/v1/services", `{"name":"dns","protocol":"udp","vip":"192.0.2.10","port":53}`)
	if got := rec.Header().Get(api.VersionHeader); got != strconv.FormatUint(store.version(), 10) || got == "1" {
		t.Errorf("a write's answer carries version %q, want the version after it (%d)", got, store.version())
	}
	for _, path := range []string{"/v1/status", "/v1/state", "/v1/services/nope"} {
		if rec := request(t, srv, "GET", path, ""); rec.Header().Get(api.VersionHeader) != "2" {
			t.Errorf("GET %s (%d): version header %q, want 2", path, rec.Code, rec.Header().Get(api.VersionHeader))
		}
	}
	if rec := request(t, srv, "GET", "/healthz", ""); rec.Header().Get(api.VersionHeader) != "" {
		t.Error("the open /healthz tells anyone the state version")
	}
}

// TestAReadWaitsUntilTheReplicaHasTheClientsWrite: a write through a follower, then a
// read through it: the read waits until the follower has the write (here: replicated
// while it waits), never answering without it.
func TestAReadWaitsUntilTheReplicaHasTheClientsWrite(t *testing.T) {
	leader, follower, _, followerURL, _ := pair(t)
	c := api.NewClient(followerURL)
	ctx := context.Background()
	if _, err := c.AddService(ctx, webService.Service); err != nil {
		t.Fatal(err)
	}
	if c.SeenVersion() != leader.version() {
		t.Fatalf("the client saw version %d after its write, the leader is at %d", c.SeenVersion(), leader.version())
	}
	// The follower gets the write only once the read has found it behind and waits.
	follower.onWait = func() { replicate(leader, follower) }
	got, err := c.Service(ctx, "web")
	if err != nil || got.Name != "web" {
		t.Fatalf("read after the write: %+v, %v", got, err)
	}
}

// TestADirectorThatStaysBehindAnswers503AndTheNextAnswers: the follower never gets the
// write; after ReadWait it refuses, and the client reads from the next director.
func TestADirectorThatStaysBehindAnswers503AndTheNextAnswers(t *testing.T) {
	leader, follower := newFakeStore("d1", true), newFakeStore("d2", false)
	ls := httptest.NewServer(New(leader, nil))
	defer ls.Close()
	fsrv := New(follower, nil)
	fsrv.ReadWait = 50 * time.Millisecond
	fs := httptest.NewServer(fsrv)
	defer fs.Close()
	follower.setLeader(false, strings.TrimPrefix(ls.URL, "http://"))

	c := api.NewClient(fs.URL, ls.URL)
	ctx := context.Background()
	if _, err := c.AddService(ctx, webService.Service); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, fs.URL+"/v1/state", nil)
	req.Header.Set(api.MinVersionHeader, strconv.FormatUint(c.SeenVersion(), 10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a director behind the asked version answered %d, want 503", resp.StatusCode)
	}
	st, err := c.State(ctx)
	if err != nil || len(st.Services) != 1 {
		t.Fatalf("read: %+v, %v; want the leader's answer with the service", st, err)
	}
	// A version of another cluster asks for nothing.
	req.Header.Set(api.ClusterHeader, "another-cluster")
	follower.must(fsm.SetClusterID{ID: "this-cluster"})
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("a version of another cluster: %d, want 200", resp.StatusCode)
	}
}

// TestAConsistentReadSeesAnotherClientsWrite: a client that never wrote asks the leader
// first (through the follower), then reads at the leader's version.
func TestAConsistentReadSeesAnotherClientsWrite(t *testing.T) {
	leader, follower, _, followerURL, hits := pair(t)
	ctx := context.Background()
	if _, err := api.NewClient(followerURL).AddService(ctx, webService.Service); err != nil {
		t.Fatal(err)
	}
	stale := api.NewClient(followerURL)
	if svcs, err := stale.Services(ctx); err != nil || len(svcs) != 0 {
		t.Fatalf("a plain read of the lagging follower: %v %v, want its (empty) replica", svcs, err)
	}
	before := hits.n.Load()
	c := api.NewClient(followerURL)
	c.Consistent = true
	follower.onWait = func() { replicate(leader, follower) }
	svcs, err := c.Services(ctx)
	if err != nil || len(svcs) != 1 {
		t.Fatalf("consistent read: %+v, %v; want the service", svcs, err)
	}
	if hits.n.Load() != before+1 {
		t.Errorf("the leader saw %d requests for one consistent read, want 1 (the barrier)", hits.n.Load()-before)
	}

	// Without a leader, a consistent read fails rather than answer what it cannot confirm.
	follower.setLeader(false, "")
	c = api.NewClient(followerURL)
	c.Consistent, c.Timeout = true, 300*time.Millisecond
	if _, err := c.State(ctx); !errors.Is(err, api.ErrUnconfirmed) {
		t.Errorf("consistent read without a leader: %v, want ErrUnconfirmed", err)
	}
}

// TestADryRunBatchChecksEverythingAndCommitsNothing: the leader's verdict, without the
// write, forwarded from a follower like the write itself.
func TestADryRunBatchChecksEverythingAndCommitsNothing(t *testing.T) {
	leader, _, _, followerURL, _ := pair(t)
	leader.must(webService, webRS1)
	c := api.NewClient(followerURL)
	ctx := context.Background()
	good := []api.BatchCommand{
		{Op: api.OpRemoveService, Name: "web"},
		{Op: api.OpAddService, Service: &fsm.Service{Name: "web2", Protocol: fsm.TCP, VIP: webService.Service.VIP, Port: 80}},
	}
	before := leader.version()
	res, err := c.CheckBatch(ctx, good)
	if err != nil || !res.DryRun || res.Checked != 2 || res.Applied != 0 {
		t.Fatalf("dry run of a good batch: %+v, %v", res, err)
	}
	// A later command that only the earlier ones make wrong is found too.
	bad := append(good, api.BatchCommand{Op: api.OpAddRealServer, RealServer: &api.RealServerRequest{Service: "web", Addr: webRS1.RealServer.Addr}})
	if _, err := c.CheckBatch(ctx, bad); !errors.Is(err, fsm.ErrNotFound) {
		t.Errorf("dry run of a batch whose third command names the service the first removes: %v, want not found", err)
	}
	if leader.version() != before || leader.applied != 0 {
		t.Errorf("a dry run changed the state: version %d → %d, %d applied", before, leader.version(), leader.applied)
	}
	if _, err := c.Batch(ctx, bad); !errors.Is(err, fsm.ErrNotFound) {
		t.Errorf("the real batch: %v, want the dry run's verdict", err)
	}
	if res, err := c.Batch(ctx, good); err != nil || res.Applied != 2 {
		t.Errorf("the good batch for real: %+v %v", res, err)
	}
}
