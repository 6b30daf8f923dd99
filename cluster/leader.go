package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// leaderRetryInterval paces retries of the leader loop's first steps (barrier, recording
// this node's entry) while it still leads.
const leaderRetryInterval = 250 * time.Millisecond

// handover asks the monitor to stop the leader loop for a planned leadership transfer
// (pause) or to let it run again (resume, one per pause). done is closed once handled.
type handover struct {
	pause bool
	done  chan struct{}
}

// monitorLeadership is the one goroutine that owns the leader loop. It consumes raft's
// ordered NotifyCh (not LeaderCh, which drops edges), starts the loop on gaining
// leadership and, on losing it, cancels the loop and waits for it to return before it
// reads the next notification, so two leader loops never overlap on this node.
func (n *Node) monitorLeadership() {
	defer close(n.monitorDone)
	var stop func() // stops the running leader loop and waits for it; nil when none runs
	stopLoop := func() {
		if stop != nil {
			stop()
			stop = nil
		}
	}
	pauses := 0 // transfers in progress; the leader loop stays stopped while any runs
	for {
		select {
		case leader := <-n.notifyCh:
			switch {
			case leader && stop == nil && pauses == 0:
				n.log.Info("gained leadership: starting leader loop")
				stop = n.startLeaderLoop()
			case !leader && stop != nil:
				n.log.Info("lost leadership: stopping leader loop")
				stopLoop()
				n.log.Info("leader loop stopped")
			}
		case h := <-n.handoverCh:
			if h.pause {
				pauses++
				stopLoop()
			} else if pauses--; pauses == 0 && stop == nil && n.IsLeader() {
				// The transfer failed and this node still leads. NotifyCh reports only
				// edges, so the loop is restarted here.
				stop = n.startLeaderLoop()
			}
			close(h.done)
		case <-n.shutdownCh:
			stopLoop()
			return
		}
	}
}

// startLeaderLoop runs leaderLoop in a goroutine and returns a func that cancels it and
// waits for it to return.
func (n *Node) startLeaderLoop() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.leaderLoop(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

// leaderLoop brings this node's state up to date with everything committed before it
// became leader (Barrier), makes sure the cluster facts a fresh cluster lacks are
// recorded, then runs the duties given to Lead until ctx is cancelled.
func (n *Node) leaderLoop(ctx context.Context) {
	for {
		err := n.establishLeadership(ctx)
		if err == nil {
			break
		}
		n.log.Warn("establishing leadership failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(leaderRetryInterval):
		}
	}
	n.runDuties(ctx)
}

func (n *Node) establishLeadership(ctx context.Context) error {
	term := n.raft.CurrentTerm()
	if err := n.Barrier(ctx); err != nil {
		return err
	}
	n.readyTerm.Store(term) // ReadIndex may skip the barrier in this term
	// Everything committed before this term is applied: the state is the cluster's.
	n.markReady("leader")
	var current fsm.Director
	var registered bool
	var clusterID string
	n.View(func(s *fsm.State) {
		current, registered = s.Director(n.self.ID)
		clusterID = s.ClusterID()
	})
	if clusterID == "" && n.cfg.ClusterID != "" {
		if err := n.Apply(ctx, fsm.SetClusterID{ID: n.cfg.ClusterID}); err != nil {
			return fmt.Errorf("record cluster id: %w", err)
		}
	}
	if !registered || current != n.self {
		if err := n.Apply(ctx, fsm.RegisterDirector{Director: n.self}); err != nil {
			return fmt.Errorf("record own director entry: %w", err)
		}
	}
	return nil
}

// handoverTo tells the monitor to pause or resume the leader loop and waits until it has.
func (n *Node) handoverTo(ctx context.Context, pause bool) error {
	h := handover{pause: pause, done: make(chan struct{})}
	select {
	case n.handoverCh <- h:
	case <-n.monitorDone:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// The monitor always answers; waiting for it bounds the pause by the duties' return.
	<-h.done
	return nil
}
