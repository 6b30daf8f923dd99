package notify

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// script writes an executable shell script into a temporary directory.
func script(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hook")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// waitFor polls cond for at most limit (a bound, not a measurement).
func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, limit)
		}
	}
}

func lines(path string) []string {
	data, _ := os.ReadFile(path)
	s := strings.TrimSpace(string(data))
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func TestCommandsGetTheEventAsArgumentsAndEnvironment(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	hook := script(t, `echo "$0 $* | $RAFTLVS_EVENT $RAFTLVS_DIRECTOR $RAFTLVS_ROLE $RAFTLVS_SERVICE $RAFTLVS_RS_ADDR $RAFTLVS_RS_PORT $RAFTLVS_HEALTH $RAFTLVS_PREVIOUS_HEALTH gossip=$RAFTLVS_GOSSIP_KEY" >>`+out+"\n")
	t.Setenv("RAFTLVS_GOSSIP_KEY", "secret")
	n := New(Hooks{Leader: []string{hook, "first"}, Health: []string{hook}, Any: []string{hook, "any"}}, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go n.Run(ctx)
	n.Notify(Event{Kind: Leader, Director: "d1", Leader: "d1", Role: Leader})
	n.Notify(Event{Kind: Follower, Director: "d1", Leader: "d2", Role: Follower}) // Any only
	n.Notify(Event{Kind: Health, Director: "d1", Role: Follower, Service: "web", Addr: netip.MustParseAddr("10.0.1.11"), Port: 80,
		Health: fsm.HealthDown, Previous: fsm.HealthUp, Reason: "HTTP 503"})
	waitFor(t, "five commands", 20*time.Second, func() bool { return len(lines(out)) == 5 })
	want := []string{
		hook + " first leader d1 d1 | leader d1 leader      gossip=",
		hook + " any leader d1 d1 | leader d1 leader      gossip=",
		hook + " any follower d1 d2 | follower d1 follower      gossip=",
		hook + " health web 10.0.1.11 80 down | health d1 follower web 10.0.1.11 80 down up gossip=",
		hook + " any health web 10.0.1.11 80 down | health d1 follower web 10.0.1.11 80 down up gossip=",
	}
	if got := lines(out); !reflect.DeepEqual(got, want) {
		t.Errorf("commands ran as\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestACommandPastItsTimeIsKilledWithItsChildren: a hook that hangs (and left a child
// behind) is killed, process group and all, the failure counted, and the next event runs.
func TestACommandPastItsTimeIsKilledWithItsChildren(t *testing.T) {
	dir := t.TempDir()
	child := filepath.Join(dir, "child")
	done := filepath.Join(dir, "done")
	hook := script(t, `if [ "$1" = fault ]; then sleep 60 & echo $! >`+child+`; wait; fi
echo "$1" >>`+done+"\n")
	n := New(Hooks{Any: []string{hook}}, Options{Timeout: 300 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go n.Run(ctx)
	n.Notify(Event{Kind: Fault, Director: "d1", Reason: "no leader"})
	n.Notify(Event{Kind: Follower, Director: "d1"})
	waitFor(t, "the next event's command", 20*time.Second, func() bool { return len(lines(done)) == 1 })
	if got := lines(done); got[0] != "follower" {
		t.Errorf("after the killed command: %v, want the follower event's", got)
	}
	ran, failed, _ := n.Stats()
	if ran != 2 || failed != 1 {
		t.Errorf("ran %d failed %d, want 2 and 1", ran, failed)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(lines(child)[0]))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the hook's child gone", 10*time.Second, func() bool {
		// Reaped by init, or a zombie of ours no more: signal 0 fails.
		return syscall.Kill(pid, 0) != nil
	})
}

// TestAFullQueueDropsAndNeverBlocks: with nothing running the commands, a queue of one
// takes one event and drops the rest at once.
func TestAFullQueueDropsAndNeverBlocks(t *testing.T) {
	n := New(Hooks{Any: []string{"/bin/true"}}, Options{Queue: 1})
	for range 3 {
		n.Notify(Event{Kind: Health})
	}
	if _, _, dropped := n.Stats(); dropped != 2 {
		t.Errorf("dropped %d, want 2", dropped)
	}
	// An event no command wants is not even queued.
	m := New(Hooks{Leader: []string{"/bin/true"}}, Options{Queue: 1})
	m.Notify(Event{Kind: Health})
	m.Notify(Event{Kind: Leader})
	if _, _, dropped := m.Stats(); dropped != 0 {
		t.Errorf("dropped %d with one wanted event, want 0", dropped)
	}
}

func TestRoleTrackerReportsChangesOnly(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	tr := NewRoleTracker("d1", 2*time.Second, 0, t0)
	steps := []struct {
		o    Observation
		want Kind // "" : no event
	}{
		{Observation{At: at(0.5)}, ""},                                  // starting: no leader yet, not long enough
		{Observation{At: at(1), Serving: true, Leader: "d2"}, Follower}, // caught up with d2
		{Observation{At: at(1.5), Serving: true, Leader: "d2"}, ""},     // no change
		{Observation{At: at(2), Leader: "d2"}, ""},                      // d2 gone quiet: an election, maybe
		{Observation{At: at(3), Leading: true, Leader: "d1"}, Leader},   // won it: never a fault
		{Observation{At: at(4)}, ""},                                    // stepped down, no quorum
		{Observation{At: at(5.9)}, ""},
		{Observation{At: at(6)}, Fault}, // 2 s without a leader
		{Observation{At: at(9)}, ""},    // still: once
		{Observation{At: at(10), Serving: true, Leader: "d3"}, Follower},
	}
	for i, s := range steps {
		e, ok := tr.Observe(s.o)
		switch {
		case s.want == "" && ok:
			t.Errorf("step %d: event %s, want none", i, e.Kind)
		case s.want != "" && (!ok || e.Kind != s.want || e.Role != s.want || e.Director != "d1" || !e.At.Equal(s.o.At)):
			t.Errorf("step %d: %+v %v, want a %s event", i, e, ok, s.want)
		case s.want == Fault && !strings.Contains(e.Reason, "no leader for 2s"):
			t.Errorf("step %d: fault reason %q", i, e.Reason)
		}
	}
	// A director that never finds a leader (joining, catching up, or no quorum) is given
	// the startup grace, then faults.
	lone := NewRoleTracker("d9", 2*time.Second, 30*time.Second, t0)
	if _, ok := lone.Observe(Observation{At: at(29)}); ok {
		t.Error("a fault within the startup grace")
	}
	if e, ok := lone.Observe(Observation{At: at(30), Leader: "d1"}); !ok || e.Kind != Fault || !strings.Contains(e.Reason, "leader d1") {
		t.Errorf("a director that never found a leader: %+v %v, want a fault naming the leader it knows of", e, ok)
	}
	// Once it had a role, faultAfter is the bound again.
	joined := NewRoleTracker("d8", 2*time.Second, 30*time.Second, t0)
	joined.Observe(Observation{At: at(10), Serving: true, Leader: "d1"})
	joined.Observe(Observation{At: at(11)})
	if e, ok := joined.Observe(Observation{At: at(13)}); !ok || e.Kind != Fault {
		t.Errorf("after a role: %+v %v, want a fault 2 s after losing the leader", e, ok)
	}
}

func TestHealthEventsAreTransitionsToUpOrDown(t *testing.T) {
	rs := func(h fsm.Health) *fsm.RealServer {
		return &fsm.RealServer{Service: "web", Addr: netip.MustParseAddr("10.0.1.1"), Port: 80, Health: h, HealthReason: "because"}
	}
	now := time.Unix(1000, 0)
	e, ok := HealthEvent(rs(fsm.HealthUp), fsm.HealthDown, now)
	if !ok || e.Kind != Health || e.Health != fsm.HealthUp || e.Previous != fsm.HealthDown || e.Reason != "because" || e.Port != 80 || !e.At.Equal(now) {
		t.Errorf("down → up: %+v %v", e, ok)
	}
	if e, ok := HealthEvent(rs(fsm.HealthDown), fsm.HealthUnknown, now); !ok || e.Previous != fsm.HealthUnknown {
		t.Errorf("unknown → down: %+v %v", e, ok)
	}
	if _, ok := HealthEvent(rs(fsm.HealthUnknown), fsm.HealthUp, now); ok {
		t.Error("up → unknown made a health event")
	}
}
