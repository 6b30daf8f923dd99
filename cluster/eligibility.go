package cluster

import (
	"context"
	"fmt"

	"github.com/raftlvs/raftlvs/fsm"
)

// HasTransferTarget reports whether a planned transfer from this leader has a director to
// pick (transferTargets: a voter, not a witness, eligible). Without one, a leader whose
// tracked checks fail keeps leading and holds nothing, rather than hand leadership to a
// director that would hand it straight back.
func (n *Node) HasTransferTarget(ctx context.Context) (bool, error) {
	servers, err := n.servers(ctx)
	if err != nil {
		return false, fmt.Errorf("list transfer targets: %w", err)
	}
	var ok bool
	n.View(func(st *fsm.State) { ok = len(n.transferTargets(st, servers)) > 0 })
	return ok, nil
}

// RestartLeaderLoop stops this leader's duties, in order and each waited for (the VIPs
// first), then starts them again while it still leads. A duty asks for it when it can
// no longer be in force and the duties after it must not be either: the tracked checks
// failed and no eligible director can take over. Call it from outside the duty's own
// goroutine, as the duty is stopped before this returns.
func (n *Node) RestartLeaderLoop(ctx context.Context) error {
	if !n.IsLeader() {
		return fmt.Errorf("restart leader loop: %w", ErrNotLeader)
	}
	if err := n.handoverTo(ctx, true); err != nil {
		return fmt.Errorf("restart leader loop: %w", err)
	}
	return n.handoverTo(context.Background(), false)
}
