package cluster

import (
	"context"
	"fmt"

	"github.com/raftlvs/raftlvs/fsm"
)

// Reads that must see a write. Every director answers from its own replica, which lags
// the leader by up to a heartbeat. The state's version (fsm.State.Version: equal logs,
// equal versions; it moves with every change and is in every snapshot) is what a client
// holds on to: a write's answer carries the version after it, and a read asks for at
// least that version. The raft index would do as well, but a follower's state machine
// knows it only for the commands it applied itself, not after a snapshot restore.

// WaitVersion returns once this node's state is at version v or later, or fails when ctx
// ends first (the error says how far behind it still is). It wakes on every change of
// the state, and polls nothing.
func (n *Node) WaitVersion(ctx context.Context, v uint64) error {
	changed, stop := n.Watch()
	defer stop()
	for {
		var cur uint64
		n.View(func(s *fsm.State) { cur = s.Version() })
		if cur >= v {
			return nil
		}
		select {
		case <-changed:
		case <-n.shutdownCh:
			return fmt.Errorf("wait for state version %d: %w", v, ErrClosed)
		case <-ctx.Done():
			return fmt.Errorf("state version %d, still short of %d: %v", cur, v, ctx.Err())
		}
	}
}

// DryRun prepares c against the leader's current state exactly as Apply would, and
// stops there: nothing is logged. A batch (or a staged commit) is tried on the state and
// undone, under the write lock as for Apply, so every command of it is checked after
// those before it. Off the leader it fails with ErrNotLeader, as Apply does, so that the
// API forwards it.
func (n *Node) DryRun(_ context.Context, c fsm.Command) error {
	if !n.IsLeader() {
		return fmt.Errorf("dry run %T: %w", c, ErrNotLeader)
	}
	return n.sm.dryRun(c)
}
