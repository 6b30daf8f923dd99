package healthd

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// leaderState is a replicated state with the leader's Apply in front of it.
type leaderState struct {
	mu      sync.Mutex
	st      *fsm.State
	commits []fsm.SetHealths
}

func (l *leaderState) View(fn func(*fsm.State)) { l.mu.Lock(); defer l.mu.Unlock(); fn(l.st) }
func (l *leaderState) Watch() (<-chan struct{}, func()) {
	return make(chan struct{}), func() {}
}

func (l *leaderState) Apply(_ context.Context, c fsm.Command) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	p, err := l.st.Prepare(c)
	if err == nil {
		err = l.st.Execute(p)
	}
	if err == nil {
		l.commits = append(l.commits, c.(fsm.SetHealths))
	}
	return err
}

func (l *leaderState) health(k fsm.RSKey) fsm.Health {
	var h fsm.Health
	l.View(func(st *fsm.State) { rs, _ := st.RealServer(k); h = rs.Health })
	return h
}

func (l *leaderState) commitCount() int { l.mu.Lock(); defer l.mu.Unlock(); return len(l.commits) }

func view(director string, h fsm.Health) View {
	return View{Director: director, Servers: []ServerView{{RSKey: rsKey(1), Health: h, Reason: "HTTP 503"}}}
}

func TestLeaderCommitsWhatAMajorityOfViewsSaysInOneEntry(t *testing.T) {
	check := &fsm.HealthCheck{Type: fsm.CheckHTTP}
	st := &leaderState{st: prepared(t, director("d1", false), director("d2", false), director("d3", false),
		webService(check, 0), fsm.AddRealServer{RealServer: fsm.RealServer{Service: "web", Addr: rsKey(1).Addr, Weight: 1}})}
	l := NewLeader(LeaderConfig{Self: "d1", State: st, Apply: st.Apply, Interval: 20 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if l.Receive(view("d2", fsm.HealthDown)) {
		t.Fatal("a director that does not lead took a view")
	}
	run := func() (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		started, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			l.Run(ctx, func() { close(started) })
		}()
		<-started
		return func() { cancel(); <-done }
	}
	stop := run()
	l.Receive(view("d2", fsm.HealthDown))
	// One director's word is not enough: a dozen passes change nothing.
	for range 12 {
		time.Sleep(20 * time.Millisecond)
		if st.commitCount() != 0 {
			t.Fatal("a lone follower's view took the real server down")
		}
	}
	l.Receive(view("d3", fsm.HealthDown))
	eventuallyTrue(t, "the majority's down committed", func() bool { return st.health(rsKey(1)) == fsm.HealthDown })
	if views, _ := l.Views(); len(views) != 2 {
		t.Errorf("views held: %+v", views)
	}
	stop()
	if st.commitCount() != 1 || len(st.commits[0].Updates) != 1 || st.commits[0].Updates[0].Reason == "" {
		t.Fatalf("commits %+v, want one entry with the transition and its reason", st.commits)
	}
	// A new term starts without the old term's views.
	stop = run()
	defer stop()
	if views, _ := l.Views(); len(views) != 0 {
		t.Fatalf("a new term kept %d views of the last one", len(views))
	}
}

func eventuallyTrue(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// A pass with nothing to weigh (no votes, no agents' verdicts) is not repeated over an
// unchanged state; a change of the state, or a vote, is weighed at the next pass.
func TestAQuietLeaderWeighsWhatChanges(t *testing.T) {
	k := rsKey(1)
	st := &leaderState{st: prepared(t, director("d1", false), director("d2", false), director("d3", false),
		webService(&fsm.HealthCheck{Type: fsm.CheckHTTP}, 0), fsm.AddRealServer{RealServer: fsm.RealServer{Service: "web", Addr: k.Addr, Weight: 1}},
		fsm.AddService{Service: fsm.Service{Name: "plain", Protocol: fsm.TCP, VIP: netip.MustParseAddr("192.0.2.11"), Port: 80, Family: fsm.IPv4}},
		fsm.AddRealServer{RealServer: fsm.RealServer{Service: "plain", Addr: k.Addr, Weight: 1}})}
	l := NewLeader(LeaderConfig{Self: "d1", State: st, Apply: st.Apply, Logger: slog.New(slog.DiscardHandler)})
	ctx := context.Background()
	for range 3 {
		if d := l.pass(ctx); !d.Empty() {
			t.Fatalf("a quiet pass decided %+v", d.Command)
		}
	}
	// The state changes: the unchecked server comes with a verdict it cannot have.
	unchecked := fsm.RSKey{Service: "plain", Addr: k.Addr, Port: k.Port}
	st.View(func(s *fsm.State) {
		p, err := s.Prepare(fsm.SetHealth{Key: unchecked, Health: fsm.HealthDown, Reason: "stale"})
		if err == nil {
			err = s.Execute(p)
		}
		if err != nil {
			t.Fatal(err)
		}
	})
	l.pass(ctx)
	if h := st.health(unchecked); h != fsm.HealthUnknown {
		t.Fatalf("after a change of the state the unchecked server is %s, want unknown", h)
	}
	l.pass(ctx) // quiet again
	// Votes come, the state unchanged: they are weighed.
	l.mu.Lock()
	l.leading = true
	l.mu.Unlock()
	l.Receive(view("d2", fsm.HealthDown))
	l.Receive(view("d3", fsm.HealthDown))
	l.pass(ctx)
	if h := st.health(k); h != fsm.HealthDown {
		t.Fatalf("after two down votes the checked server is %s, want down", h)
	}
}
