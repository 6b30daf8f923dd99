package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/fsm"
)

// countingHandler counts the requests a server received; onHit, if set, sees each
// count before the request is served.
type countingHandler struct {
	h     http.Handler
	n     atomic.Int64
	onHit atomic.Pointer[func(n int64)]
}

func (c *countingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := c.n.Add(1)
	if f := c.onHit.Load(); f != nil {
		(*f)(n)
	}
	c.h.ServeHTTP(w, r)
}

// pair starts a leader and a follower that names it.
func pair(t *testing.T) (leader, follower *fakeStore, leaderURL, followerURL string, leaderHits *countingHandler) {
	t.Helper()
	leader, follower = newFakeStore("d1", true), newFakeStore("d2", false)
	leaderHits = &countingHandler{h: New(leader, nil)}
	ls := httptest.NewServer(leaderHits)
	t.Cleanup(ls.Close)
	fs := httptest.NewServer(New(follower, nil))
	t.Cleanup(fs.Close)
	follower.setLeader(false, strings.TrimPrefix(ls.URL, "http://"))
	return leader, follower, ls.URL, fs.URL, leaderHits
}

func TestFollowerForwardsWritesToLeader(t *testing.T) {
	leader, follower, _, followerURL, hits := pair(t)
	c := api.NewClient(followerURL)
	ctx := context.Background()

	info, err := c.AddService(ctx, webService.Service)
	if err != nil {
		t.Fatalf("add through follower: %v", err)
	}
	if info.Name != "web" {
		t.Errorf("relayed answer %+v", info)
	}
	if leader.applied != 1 || follower.applied != 0 {
		t.Errorf("applied: leader %d follower %d, want 1 and 0", leader.applied, follower.applied)
	}
	// The leader's verdict comes back as is, error class included.
	if _, err := c.AddService(ctx, webService.Service); !errors.Is(err, fsm.ErrExists) {
		t.Errorf("duplicate through follower: %v, want ErrExists", err)
	}
	if err := c.Join(ctx, fsm.Director{ID: "d3", RaftAddr: "127.0.0.1:7003", APIAddr: "127.0.0.1:7083"}); err != nil {
		t.Errorf("join through follower: %v", err)
	}
	leader.View(func(st *fsm.State) {
		if _, ok := st.Director("d3"); !ok {
			t.Error("join did not reach the leader")
		}
	})
	if got := hits.n.Load(); got != 3 {
		t.Errorf("leader saw %d requests, want 3", got)
	}
	// Reads stay local. (This client would wait for the follower to have its writes,
	// which this fake follower never gets: a client that has written nothing reads.)
	if _, err := api.NewClient(followerURL).Services(ctx); err != nil || hits.n.Load() != 3 {
		t.Errorf("read: %v, leader hits %d", err, hits.n.Load())
	}
}

func TestForwardingStopsAtHopLimit(t *testing.T) {
	// Two followers that each believe the other leads.
	a, b := newFakeStore("a", false), newFakeStore("b", false)
	ha, hb := &countingHandler{h: New(a, nil)}, &countingHandler{h: New(b, nil)}
	sa, sb := httptest.NewServer(ha), httptest.NewServer(hb)
	defer sa.Close()
	defer sb.Close()
	a.setLeader(false, strings.TrimPrefix(sb.URL, "http://"))
	b.setLeader(false, strings.TrimPrefix(sa.URL, "http://"))

	// One request: the original plus MaxForwardHops forwards, then a 503 (the client
	// would send it again later: nothing was logged).
	resp, err := http.Post(sa.URL+"/v1/services", "application/json", strings.NewReader(`{"protocol":"tcp","vip":"192.0.2.10","port":80}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body api.ErrorBody
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != http.StatusServiceUnavailable || body.Code != api.CodeUnavailable {
		t.Fatalf("%d %+v, want 503 unavailable", resp.StatusCode, body)
	}
	if total := ha.n.Load() + hb.n.Load(); total != 1+api.MaxForwardHops {
		t.Errorf("%d requests in all, want the original plus %d forwards", total, api.MaxForwardHops)
	}
}

func TestFollowerWithoutLeaderAnswers503(t *testing.T) {
	store := newFakeStore("d2", false)
	rec := request(t, New(store, nil), "POST", "/v1/services", `{"protocol":"tcp","vip":"192.0.2.10","port":80}`)
	if rec.Code != http.StatusServiceUnavailable || decode[api.ErrorBody](t, rec).Code != api.CodeUnavailable {
		t.Errorf("%d %s, want 503 unavailable", rec.Code, rec.Body)
	}
}

func TestLeaderLeavingHandsOverThenIsRemovedByTheNewLeader(t *testing.T) {
	leader, follower, leaderURL, followerURL, _ := pair(t)
	for _, s := range []*fakeStore{leader, follower} {
		s.must(fsm.RegisterDirector{Director: fsm.Director{ID: "d1", RaftAddr: "127.0.0.1:7001", APIAddr: strings.TrimPrefix(leaderURL, "http://")}},
			fsm.RegisterDirector{Director: fsm.Director{ID: "d2", RaftAddr: "127.0.0.1:7002", APIAddr: strings.TrimPrefix(followerURL, "http://")}})
	}
	leader.onTransfer = func() {
		follower.setLeader(true, "")
		leader.setLeader(false, strings.TrimPrefix(followerURL, "http://"))
	}

	if err := api.NewClient(leaderURL).Leave(context.Background(), "d1"); err != nil {
		t.Fatalf("leave: %v", err)
	}
	if len(leader.transfers) != 1 {
		t.Errorf("transfers %v, want one", leader.transfers)
	}
	follower.View(func(st *fsm.State) {
		if _, ok := st.Director("d1"); ok {
			t.Error("the new leader did not remove d1")
		}
	})
}

func TestTransferWithoutBodyLetsRaftChoose(t *testing.T) {
	store, srv := newTestServer(t)
	req := httptest.NewRequest("POST", "/v1/leadership/transfer", nil)
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusNoContent || len(store.transfers) != 1 || store.transfers[0] != "" {
		t.Errorf("%d %s transfers %q", rec.Code, rec.Body, store.transfers)
	}
}

func TestClientErrorsWrapFSMClasses(t *testing.T) {
	store, srv := newTestServer(t)
	store.must(webService, webRS1)
	hs := httptest.NewServer(srv)
	defer hs.Close()
	c := api.NewClient(hs.URL)
	ctx := context.Background()
	_, errInvalid := c.AddService(ctx, fsm.Service{Name: "x", Protocol: fsm.TCP, VIP: webService.Service.VIP, Port: 81, Scheduler: "nope"})
	_, errExists := c.AddService(ctx, webService.Service)
	_, errConflict := c.AddService(ctx, fsm.Service{Name: "other", Protocol: fsm.TCP, VIP: webService.Service.VIP, Port: 80})
	_, errNotFound := c.Service(ctx, "nope")

	tests := []struct {
		name  string
		err   error
		class error
		field string
	}{
		{"invalid", errInvalid, fsm.ErrInvalid, "scheduler"},
		{"exists", errExists, fsm.ErrExists, "name"},
		{"conflict", errConflict, fsm.ErrConflict, "vip"},
		{"not found", errNotFound, fsm.ErrNotFound, "name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !errors.Is(tt.err, tt.class) {
				t.Fatalf("%v is not %v", tt.err, tt.class)
			}
			var apiErr *api.Error
			if !errors.As(tt.err, &apiErr) || apiErr.Field != tt.field || !strings.Contains(apiErr.Error(), tt.field) {
				t.Errorf("error %#v, want field %q named in the message", apiErr, tt.field)
			}
			for _, other := range []error{fsm.ErrInvalid, fsm.ErrExists, fsm.ErrConflict, fsm.ErrNotFound} {
				if other != tt.class && errors.Is(tt.err, other) {
					t.Errorf("%v also matches %v", tt.err, other)
				}
			}
		})
	}
}

func TestClientTriesNextDirectorOnlyWhenUnreachable(t *testing.T) {
	// A closed listener's address: connections are refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()

	store, srv := newTestServer(t)
	hits := &countingHandler{h: srv}
	live := httptest.NewServer(hits)
	defer live.Close()
	ctx := context.Background()

	if _, err := api.NewClient(dead, live.URL).AddService(ctx, webService.Service); err != nil {
		t.Fatalf("write with the first director down: %v", err)
	}
	if store.applied != 1 {
		t.Errorf("applied %d", store.applied)
	}
	// A 4xx is an answer: the second director is not asked.
	other := &countingHandler{h: New(newFakeStore("d2", true), nil)}
	second := httptest.NewServer(other)
	defer second.Close()
	if _, err := api.NewClient(live.URL, second.URL).Service(ctx, "nope"); !errors.Is(err, fsm.ErrNotFound) {
		t.Errorf("err %v", err)
	}
	if other.n.Load() != 0 {
		t.Errorf("second director asked %d times after a 404", other.n.Load())
	}
	if _, err := api.NewClient(dead).Status(ctx, false); err == nil {
		t.Error("no error with every director down")
	}
}

func TestReadsSkipADirectorThatHasNotCaughtUp(t *testing.T) {
	ctx := context.Background()
	behind := newFakeStore("d1", false)
	behind.notServing = true // restarted, state still empty: its 404 would be a lie
	lagging := &countingHandler{h: New(behind, nil)}
	first := httptest.NewServer(lagging)
	defer first.Close()
	caughtUp, srv := newTestServer(t)
	caughtUp.must(webService)
	second := httptest.NewServer(srv)
	defer second.Close()

	got, err := api.NewClient(first.URL, second.URL).Service(ctx, webService.Service.Name)
	if err != nil || got.Name != webService.Service.Name {
		t.Fatalf("read past a director that has not caught up: %+v, %v", got, err)
	}
	if lagging.n.Load() != 1 {
		t.Errorf("the lagging director was asked %d times, want 1", lagging.n.Load())
	}
	// With only the lagging director, the read is tried again until the call ends (here:
	// its ctx, cancelled once the director was asked twice), and fails as unavailable.
	again, cancel := context.WithCancel(ctx)
	defer cancel()
	asked := lagging.n.Load()
	onHit := func(n int64) {
		if n == asked+2 {
			cancel()
		}
	}
	lagging.onHit.Store(&onHit)
	if _, err := api.NewClient(first.URL).Service(again, webService.Service.Name); !errors.Is(err, api.ErrUnavailable) {
		t.Fatalf("only a lagging director: got %v, want api.ErrUnavailable", err)
	}
	lagging.onHit.Store(nil)
	// Its status still answers: an operator must see why it is not serving.
	if _, err := api.NewClient(first.URL).Status(ctx, false); err != nil {
		t.Fatalf("status of a lagging director: %v", err)
	}
}
