package cluster

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlvs/raftlvs/fsm"
)

// ghostVoter listens on a Raft address that accepts connections and answers nothing:
// what a wrong address joined by hand (another service's port) looks like to Raft.
func ghostVoter(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

func TestTransferNeverPicksAGhostVoterAndTheGhostCanBeRemoved(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tc := newTestCluster(t)
	defer tc.duties.check(t)
	tc.pair(ctx)
	d3 := tc.start("d3", false)
	tc.join(ctx, d3)
	directors := tc.open()
	leader := tc.leader(directors...)
	tc.established(leader)
	// "a-ghost" sorts before every director: a pick by id alone takes it first.
	ghost := fsm.Director{ID: "a-ghost", RaftAddr: ghostVoter(t), APIAddr: "127.0.0.1:1"}
	if err := leader.Join(ctx, ghost); err != nil {
		t.Fatalf("join the ghost: %v", err)
	}

	// The leader's candidates are the directors that answer it; the ghost never does.
	leader = tc.leader(directors...)
	eventually(t, "the other two directors among the transfer targets", func() bool {
		servers, err := leader.servers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var targets []raft.Server
		leader.View(func(s *fsm.State) { targets = leader.transferTargets(s, servers) })
		for _, s := range targets {
			if s.ID == raft.ServerID(ghost.ID) {
				t.Fatalf("the ghost is a transfer target of %s: %v", leader.ID(), targets)
			}
		}
		return len(targets) == 2
	})
	// Asked by name, the leader refuses it rather than hold every write for a transfer
	// that cannot end.
	if err := leader.TransferLeadership(ctx, ghost.ID); !errors.Is(err, ErrNoTransferTarget) {
		t.Fatalf("transfer to the ghost: %v, want ErrNoTransferTarget", err)
	}
	if !leader.IsLeader() {
		t.Fatalf("%s lost leadership to a refused transfer", leader.ID())
	}

	for i := range 3 {
		from := tc.leader(directors...)
		start := time.Now()
		eventually(t, "a transfer from "+from.ID(), func() bool {
			err := from.TransferLeadership(ctx, "")
			// A leader that took over a moment ago has not heard every voter answer yet.
			if err != nil && !retriable(err) && !errors.Is(err, ErrNoTransferTarget) {
				t.Fatalf("transfer %d from %s: %v", i, from.ID(), err)
			}
			return err == nil || !from.IsLeader()
		})
		to := tc.leader(directors...)
		t.Logf("transfer %d: %s → %s in %v", i, from.ID(), to.ID(), time.Since(start).Round(time.Millisecond))
		tc.established(to)
		tc.apply(ctx, fsm.AddService{Service: fsm.Service{Name: "web" + string(rune('a'+i)), FWMark: uint32(i + 1)}})
	}

	// raftlvs leave ghost: the leader removes it.
	leader = tc.leader(directors...)
	if err := leader.Remove(ctx, ghost.ID); err != nil {
		t.Fatalf("remove the ghost: %v", err)
	}
	if ids := voterIDs(t, leader); !slices.Equal(ids, []string{"d1", "d2", "d3"}) {
		t.Fatalf("voters after removing the ghost: %v", ids)
	}
}

// A target that takes the TimeoutNow call and never answers (frozen right after it
// caught up) holds raft's transfer, and every write, until the call returns: the
// transport bounds it.
func TestTimeoutNowToATargetThatNeverAnswersReturns(t *testing.T) {
	nt, err := raft.NewTCPTransport("127.0.0.1:0", nil, 1, 10*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	trans := newLeaderCommitTransport(nt, 200*time.Millisecond)
	defer trans.Close()
	done := make(chan error, 1)
	go func() {
		done <- trans.TimeoutNow("ghost", raft.ServerAddress(ghostVoter(t)), &raft.TimeoutNowRequest{}, &raft.TimeoutNowResponse{})
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("TimeoutNow to a target that never answers succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("TimeoutNow to a target that never answers still waits after 5 s (the transport's timeout is 10 s)")
	}
}

// A cluster of witnesses only has no director to hand leadership to: its leader keeps
// leading (and says so) rather than hand leadership from witness to witness, a new term
// every second; once a director joins, it gets leadership.
func TestWitnessesAloneKeepTheirLeaderUntilADirectorJoins(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tc := newTestCluster(t)
	witness := func(c *Config) { c.Witness = true }
	w1 := tc.start("w1", true, witness)
	tc.leader(w1)
	tc.established(w1)
	for _, id := range []string{"w2", "w3"} {
		tc.join(ctx, tc.start(id, false, witness))
	}
	tc.established(tc.leader())
	transfers := func() uint64 {
		var sum uint64
		for _, n := range tc.open() {
			sum += n.transfers.Load()
		}
		return sum
	}
	before := transfers()
	time.Sleep(3*witnessPause + witnessPause/2)
	if n := transfers() - before; n > 0 {
		t.Fatalf("witnesses alone started %d leadership transfers in %v", n, 3*witnessPause+witnessPause/2)
	}

	d4 := tc.start("d4", false)
	tc.join(ctx, d4)
	eventually(t, "the director to be handed leadership", func() bool { return d4.IsLeader() })
}
