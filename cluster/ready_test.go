package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlvs/raftlvs/fsm"
)

func isClosed(ch <-chan struct{}) bool { return signalled(ch) }

// waitClosed waits up to pollTimeout for ch to close.
func waitClosed(t testing.TB, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(pollTimeout):
		t.Fatalf("waited %v for %s", pollTimeout, what)
	}
}

func TestRestartedFollowerIsReadyOnlyOnceCaughtUpWithTheLeader(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tc := newTestCluster(t)
	d1 := tc.start("d1", true)
	d2 := tc.start("d2", false)
	d3 := tc.start("d3", false)
	tc.leader(d1)
	tc.established(d1)
	tc.join(ctx, d2)
	tc.join(ctx, d3)
	tc.apply(ctx, fsm.AddService{Service: webService()})
	tc.apply(ctx, fsm.AddRealServer{RealServer: webServer("198.51.100.1")})

	// A follower with a snapshot (taken now, rather than waiting for the threshold) and a
	// log entry after it.
	f := d3
	if f == tc.leader() {
		f = d2
	}
	eventually(t, f.ID()+" to apply the first writes", func() bool { return hasRealServer(f, "198.51.100.1") })
	if err := f.raft.Snapshot().Error(); err != nil {
		t.Fatalf("snapshot on %s: %v", f.ID(), err)
	}
	tc.apply(ctx, fsm.AddRealServer{RealServer: webServer("198.51.100.2")})
	eventually(t, f.ID()+" to apply the write after its snapshot", func() bool { return hasRealServer(f, "198.51.100.2") })
	waitClosed(t, f.ID()+" to be ready", f.Ready())

	// It stops and misses a write; then the others stop too.
	fid := f.ID()
	tc.stop(fid)
	tc.apply(ctx, fsm.AddRealServer{RealServer: webServer("198.51.100.3")})
	var others []string
	for _, n := range tc.open() {
		others = append(others, n.ID())
	}
	for _, id := range others {
		tc.stop(id)
	}

	// Alone, it restores the snapshot only: the entry after it waits for a leader to say
	// it is committed. It tries to become leader, cannot, and is not ready meanwhile.
	f = tc.start(fid, false)
	if hasRealServer(f, "198.51.100.2") {
		t.Fatalf("precondition: %s applied its log tail without a leader; the test no longer reproduces a restart", fid)
	}
	eventually(t, fid+" to give up waiting for a leader and stand for election", func() bool {
		return f.raft.State() == raft.Candidate
	})
	if isClosed(f.Ready()) || f.Serving() {
		t.Fatalf("%s ready (%v) or serving (%v) without ever reaching a leader", fid, isClosed(f.Ready()), f.Serving())
	}

	// The others come back and one of them leads (their logs are ahead of f's). Once
	// ready, f has every write the cluster committed, the one it missed included.
	for _, id := range others {
		tc.start(id, false)
	}
	waitClosed(t, fid+" to be ready once a leader is back", f.Ready())
	for _, addr := range []string{"198.51.100.1", "198.51.100.2", "198.51.100.3"} {
		if !hasRealServer(f, addr) {
			t.Errorf("%s ready without real server %s", fid, addr)
		}
	}
	eventually(t, fid+" to serve", f.Serving)

	// Cut off from the others, it stops serving; ready stays closed.
	for _, id := range others {
		tc.stop(id)
	}
	eventually(t, fid+" to stop serving once cut off", func() bool { return !f.Serving() })
	if !isClosed(f.Ready()) {
		t.Fatal("Ready reopened")
	}
}

func TestBootstrapNodeIsReadyAsLeaderAndJoinedNodeOnceCaughtUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tc := newTestCluster(t)
	d1 := tc.start("d1", true)
	waitClosed(t, "the bootstrapped node to be ready", d1.Ready())
	if !d1.IsLeader() || !d1.Serving() {
		t.Fatalf("bootstrapped node ready but leader %v, serving %v", d1.IsLeader(), d1.Serving())
	}
	tc.established(d1)

	d2 := tc.start("d2", false)
	if d2.Serving() {
		t.Fatal("a node that was never joined serves")
	}
	tc.join(ctx, d2)
	waitClosed(t, "the joined node to be ready", d2.Ready())
	var ok bool
	d2.View(func(s *fsm.State) { _, ok = s.Director("d1") })
	if !ok {
		t.Fatal("joined node ready without the leader's director entry, written before it joined")
	}
}

func TestRemovedNodeSeesDoneAndTheLeaderDoesNot(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tc := newTestCluster(t)
	d1, d2 := tc.pair(ctx)
	tc.apply(ctx, fsm.AddService{Service: webService()})

	var leader, removed *Node
	eventually(t, "the leader to remove the follower", func() bool {
		leader = tc.anyLeader()
		removed = d1
		if leader == d1 {
			removed = d2
		}
		err := leader.Remove(ctx, removed.ID())
		return !retriable(err) || errors.Is(err, fsm.ErrNotFound)
	})
	waitClosed(t, removed.ID()+"'s Done after its removal", removed.Done())
	if isClosed(leader.Done()) {
		t.Fatal("the leader's Done closed when it removed a follower")
	}
	if removed.Serving() {
		t.Fatal("a removed node serves")
	}
	if err := leader.Apply(ctx, fsm.RemoveService{Name: "web"}); err != nil {
		t.Fatalf("write on the remaining leader: %v", err)
	}
	tc.stop(leader.ID())
	if !isClosed(leader.Done()) {
		t.Fatal("Done open after Close")
	}
}

func TestOperationsWithoutDeadlineAreBounded(t *testing.T) {
	withDeadline, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	for _, tc := range []struct {
		name     string
		ctx      context.Context
		atLeast  time.Duration
		atMost   time.Duration
		deadline bool
	}{
		{"no deadline gets the default", context.Background(), defaultOpTimeout - time.Minute, defaultOpTimeout, true},
		{"a caller's deadline is kept", withDeadline, time.Hour - time.Minute, time.Hour, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := withDefaultTimeout(tc.ctx)
			defer cancel()
			dl, ok := ctx.Deadline()
			if left := time.Until(dl); !ok || left < tc.atLeast || left > tc.atMost {
				t.Fatalf("deadline in %v (set %v), want within [%v, %v]", left, ok, tc.atLeast, tc.atMost)
			}
		})
	}
	// The enqueue timeout handed to raft is never 0 (raft's "wait for ever").
	if got := timeoutOf(context.Background()); got != defaultOpTimeout {
		t.Fatalf("raft timeout without deadline %v, want %v", got, defaultOpTimeout)
	}
}
