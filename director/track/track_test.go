package track

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/healthd"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		spec, target string
		ok           bool
	}{
		{`exec:pidof haproxy`, "127.0.0.1:0", true},
		{`http://127.0.0.1:8404/healthz`, "127.0.0.1:8404", true},
		{`https://localhost/ready`, "127.0.0.1:443", true},
		{`tcp:[::1]:6443`, "[::1]:6443", true},
		{`exec:`, "", false},
		{`http://haproxy.local:80/`, "", false}, // an address or localhost: no resolver in the loop
		{`tcp:127.0.0.1`, "", false},
		{`tcp:127.0.0.1:0`, "", false},
		{`pidof haproxy`, "", false},
	} {
		c, err := Parse(tc.spec, time.Second)
		switch {
		case tc.ok && err != nil:
			t.Errorf("Parse(%q): %v", tc.spec, err)
		case !tc.ok && !errors.Is(err, ErrBadSpec):
			t.Errorf("Parse(%q) = %+v, %v; want ErrBadSpec", tc.spec, c, err)
		case tc.ok && c.target.String() != tc.target:
			t.Errorf("Parse(%q) probes %s, want %s", tc.spec, c.target, tc.target)
		}
	}
}

// An exec check runs its command line through the shell, as keepalived's track_script.
func TestExecCheckRunsACommandLine(t *testing.T) {
	flag := filepath.Join(t.TempDir(), "up")
	c, err := Parse("exec:test -f "+flag+" && true", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r := c.checker.Check(t.Context(), c.target); r.Up {
		t.Fatalf("passes without the file: %+v", r)
	}
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if r := c.checker.Check(t.Context(), c.target); !r.Up {
		t.Fatalf("fails with the file: %+v", r)
	}
}

// switchable is a checker whose answer the test sets.
type switchable struct {
	mu sync.Mutex
	up bool
}

func (s *switchable) Check(context.Context, netip.AddrPort) healthd.Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	return healthd.Result{Up: s.up, Reason: map[bool]string{true: "up", false: "down"}[s.up]}
}

func (s *switchable) set(up bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.up = up
}

func TestVerdictFollowsRiseAndFall(t *testing.T) {
	var changes []bool
	tr, err := New(Config{Checks: []Check{{Spec: "x"}}, Rise: 2, Fall: 3, OnChange: func(p bool, _ string) { changes = append(changes, p) }})
	if err != nil {
		t.Fatal(err)
	}
	if p, known, _, _ := tr.Verdict(); p || known {
		t.Fatal("passing before any run")
	}
	for _, run := range []bool{true, false, false, true, false, false, false, true, true} {
		tr.record(run, "")
	}
	// first run passes; two failures are not three; three are; two passes are Rise.
	if want := []bool{true, false, true}; len(changes) != 3 || changes[0] != want[0] || changes[1] != want[1] || changes[2] != want[2] {
		t.Fatalf("changes %v, want %v", changes, want)
	}
	if _, err := New(Config{}); !errors.Is(err, ErrNoChecks) {
		t.Fatalf("no checks: %v", err)
	}
}

// fakeLeader records what the duty asked of the node; a transfer or restart stops the
// duty, as the real node's do.
type fakeLeader struct {
	mu        sync.Mutex
	target    bool
	transfers int
	stop      func()
}

func (f *fakeLeader) HasTransferTarget(context.Context) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.target, nil
}

func (f *fakeLeader) TransferLeadership(context.Context, string) error {
	f.mu.Lock()
	f.transfers++
	f.mu.Unlock()
	f.stop()
	return nil
}

func (f *fakeLeader) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.transfers
}

// runDuty runs the duty as the leader loop does; it returns whether started was called
// within wait and the channel closed when the duty returns.
func runDuty(t *testing.T, tr *Tracker, node *fakeLeader) (started chan struct{}, done chan struct{}) {
	ctx, cancel := context.WithCancel(t.Context())
	node.stop = cancel
	started, done = make(chan struct{}), make(chan struct{})
	var once sync.Once
	go func() {
		defer close(done)
		tr.Duty(node)(ctx, func() { once.Do(func() { close(started) }) })
	}()
	t.Cleanup(func() { cancel(); <-done })
	return started, done
}

func waitFor(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func TestDuty(t *testing.T) {
	newTracker := func(t *testing.T, up bool) (*Tracker, *switchable) {
		sw := &switchable{up: up}
		tr, err := New(Config{Checks: []Check{{Spec: "proxy", checker: sw}}, Interval: 5 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { tr.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		return tr, sw
	}
	// In force at once, whatever the checks say: they gate the VIPs (Verdict), not the
	// duties after this one.
	t.Run("failing at the start of a term: in force, hands over", func(t *testing.T) {
		tr, _ := newTracker(t, false)
		node := &fakeLeader{target: true}
		started, done := runDuty(t, tr, node)
		waitFor(t, "the duty to be in force", started)
		waitFor(t, "the duty to end with the transfer", done)
		if n := node.count(); n != 1 {
			t.Fatalf("%d transfers, want 1", n)
		}
	})
	t.Run("failing with no one to hand over to: in force, leads on", func(t *testing.T) {
		tr, sw := newTracker(t, false)
		node := &fakeLeader{}
		started, done := runDuty(t, tr, node)
		waitFor(t, "the duty to be in force", started)
		time.Sleep(50 * time.Millisecond) // ten runs, all failing
		sw.set(true)
		time.Sleep(20 * time.Millisecond)
		select {
		case <-done:
			t.Fatal("the duty ended with no one to hand over to")
		default:
		}
		if n := node.count(); n != 0 {
			t.Fatalf("%d transfers with no one to hand over to", n)
		}
	})
	t.Run("failing during the term: hands over", func(t *testing.T) {
		tr, sw := newTracker(t, true)
		node := &fakeLeader{target: true}
		started, done := runDuty(t, tr, node)
		waitFor(t, "the duty to be in force", started)
		sw.set(false)
		waitFor(t, "the duty to end with the transfer", done)
		if n := node.count(); n != 1 {
			t.Fatalf("%d transfers; want one", n)
		}
	})
}
