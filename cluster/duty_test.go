package cluster

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// dutyLog records what the duties of one node did, in order.
type dutyLog struct {
	mu     sync.Mutex
	events []string
}

func (l *dutyLog) add(e string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *dutyLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

func TestDutiesStartInOrderAndStopFirstInFirstOut(t *testing.T) {
	var log dutyLog
	release := make(chan struct{}) // the first duty is "in force" only once released
	duty := func(name string, gate <-chan struct{}) Duty {
		return Duty{Name: name, Run: func(ctx context.Context, started func()) error {
			log.add("start " + name)
			if gate != nil {
				<-gate
			}
			started()
			<-ctx.Done()
			log.add("stop " + name)
			return nil
		}}
	}
	failing := Duty{Name: "broken", Run: func(ctx context.Context, started func()) error {
		log.add("start broken")
		return errors.New("cannot start")
	}}
	tc := newTestCluster(t)
	n, err := Open(Config{NodeID: "d1", DataDir: t.TempDir(), RaftBind: "127.0.0.1:0", APIAddr: "127.0.0.1:18999",
		Bootstrap: true, Logger: testLogger(), HeartbeatTimeout: time.Second, ElectionTimeout: time.Second, LeaderLeaseTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	tc.mu.Lock()
	tc.nodes["d1"] = n
	tc.mu.Unlock()
	n.Lead(duty("vips", release), failing, duty("sync", nil), duty("registrar", nil))

	eventually(t, "the first duty to start", func() bool { return slices.Equal(log.get(), []string{"start vips"}) })
	// Nothing else starts before the first duty is in force.
	time.Sleep(50 * time.Millisecond)
	if got := log.get(); !slices.Equal(got, []string{"start vips"}) {
		t.Fatalf("events %v: a duty started before the one before it was in force", got)
	}
	close(release)
	eventually(t, "every duty to start", func() bool { return len(log.get()) == 4 })
	tc.stop("d1")
	want := []string{"start vips", "start broken", "start sync", "start registrar", "stop vips", "stop sync", "stop registrar"}
	if got := log.get(); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

func TestStopHandsLeadershipOverBeforeClosing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tc := newTestCluster(t)
	defer tc.duties.check(t)
	d1, d2 := tc.pair(ctx)
	leader, other := d1, d2
	if tc.leader() == d2 {
		leader, other = d2, d1
	}
	tc.mu.Lock()
	delete(tc.nodes, leader.ID())
	tc.mu.Unlock()
	if err := leader.Stop(); err != nil {
		t.Fatal(err)
	}
	// Handed over, not lost: the other leads without waiting out an election timeout.
	eventually(t, other.ID()+" to lead", other.IsLeader)
}

func TestJoinThroughRetriesUntilAccepted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tc := newTestCluster(t)
	d1 := tc.start("d1", true)
	tc.leader(d1)
	tc.established(d1)
	d2 := tc.start("d2", false)
	j := &flakyJoiner{leader: d1, refusals: 2}
	if err := d2.JoinThrough(ctx, j); err != nil {
		t.Fatal(err)
	}
	if j.calls != 3 {
		t.Fatalf("%d join attempts, want 2 refused and 1 accepted", j.calls)
	}
	// A voter that knows its leader does not ask again (a restart).
	eventually(t, "d2 to know its leader", func() bool { id, _ := d2.Leader(); return id == "d1" })
	if err := d2.JoinThrough(ctx, j); err != nil || j.calls != 3 {
		t.Fatalf("second JoinThrough: %v after %d calls", err, j.calls)
	}
}

type flakyJoiner struct {
	leader   *Node
	refusals int
	calls    int
}

func (j *flakyJoiner) Join(ctx context.Context, d fsm.Director) error {
	j.calls++
	if j.calls <= j.refusals {
		return errors.New("no leader is known yet")
	}
	return j.leader.Join(ctx, d)
}
