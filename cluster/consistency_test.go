package cluster

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

var webSvc = fsm.Service{Name: "web", Protocol: fsm.TCP, VIP: netip.MustParseAddr("192.0.2.10"), Port: 80}

// TestAFollowerWaitsForAVersionAndADryRunCommitsNothing: WaitVersion returns once the
// follower's replica has the version the leader reached (and fails, saying how far it
// got, for a version nobody has); DryRun gives the leader's verdict and logs nothing.
func TestAFollowerWaitsForAVersionAndADryRunCommitsNothing(t *testing.T) {
	ctx := context.Background()
	tc := newTestCluster(t)
	d1, d2 := tc.pair(ctx)
	tc.apply(ctx, fsm.AddService{Service: webSvc})
	var want uint64
	tc.anyLeader().View(func(s *fsm.State) { want = s.Version() })
	for _, n := range []*Node{d1, d2} {
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		if err := n.WaitVersion(wctx, want); err != nil {
			t.Errorf("%s: wait for version %d: %v", n.ID(), want, err)
		}
		cancel()
		var got uint64
		n.View(func(s *fsm.State) { got = s.Version() })
		if got < want {
			t.Errorf("%s: WaitVersion returned at version %d, short of %d", n.ID(), got, want)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := d2.WaitVersion(wctx, want+1000); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("wait for a version nobody has: %v, want an error that does not pass for an unknown outcome", err)
	}

	leader := tc.anyLeader()
	follower := d1
	if follower == leader {
		follower = d2
	}
	if err := follower.DryRun(ctx, fsm.AddService{Service: fsm.Service{Protocol: fsm.UDP, VIP: webSvc.VIP, Port: 53}}); !errors.Is(err, ErrNotLeader) {
		t.Errorf("dry run on the follower: %v, want ErrNotLeader", err)
	}
	dup := fsm.Batch{Commands: []fsm.Command{
		fsm.AddService{Service: fsm.Service{Name: "dns", Protocol: fsm.UDP, VIP: webSvc.VIP, Port: 53}},
		fsm.AddService{Service: webSvc},
	}}
	if err := leader.DryRun(ctx, dup); !errors.Is(err, fsm.ErrExists) {
		t.Errorf("dry run of a batch whose second command exists: %v, want ErrExists", err)
	}
	if err := leader.DryRun(ctx, dup.Commands[0]); err != nil {
		t.Errorf("dry run of a good command: %v", err)
	}
	var after uint64
	leader.View(func(s *fsm.State) { after = s.Version() })
	if after != want {
		t.Errorf("version %d after dry runs, want %d: a dry run wrote", after, want)
	}
}
