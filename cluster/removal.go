package cluster

import (
	"context"
	"time"

	"github.com/hashicorp/raft"
)

// Done is closed once raft has shut down on this node, for whatever reason: Close, or
// the node noticed it was removed from the cluster by the others. A removed node serves
// nothing and never becomes leader again, so the daemon exits on it.
func (n *Node) Done() <-chan struct{} { return n.done }

func (n *Node) markDone() { n.doneOnce.Do(func() { close(n.done) }) }

// observationBuffer holds raft observations while watchRaft is busy reading the
// configuration; state and leader changes are a few per election, heartbeat failures one
// per failing peer per back-off (at least HeartbeatTimeout/20 apart).
const observationBuffer = 64

// registerObserver asks raft for its state and leader changes, peer changes and, as
// leader, heartbeats that fail or resume (contacts). The observer does not
// block raft: watchRaft must never make raft wait on it, since it calls back into raft.
func (n *Node) registerObserver() (<-chan raft.Observation, *raft.Observer) {
	ch := make(chan raft.Observation, observationBuffer)
	o := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.RaftState, raft.LeaderObservation, raft.PeerObservation,
			raft.FailedHeartbeatObservation, raft.ResumedHeartbeatObservation:
			return true
		}
		return false
	})
	n.raft.RegisterObserver(o)
	return ch, o
}

// watchRaft closes Done when raft shuts down, and shuts raft down when this node finds it
// was removed from the configuration. raft v1.8 stops a removed follower's replication
// (after a last attempt that carries the removal), but the follower itself only stops
// hearing from the leader and sits idle; raft shuts down by itself only a leader that
// removed itself.
func (n *Node) watchRaft(obs <-chan raft.Observation, o *raft.Observer) {
	defer n.background.Done()
	defer n.raft.DeregisterObserver(o)
	for {
		select {
		case <-n.shutdownCh:
			return
		case ob := <-obs:
			if ev, ok := n.contacts.observe(ob.Data, time.Now(), n.answeredAt); ok && n.cfg.OnEvent != nil {
				ev.Term = n.raft.CurrentTerm()
				n.cfg.OnEvent(ev)
			}
			if lo, ok := ob.Data.(raft.LeaderObservation); ok && lo.LeaderID == "" && n.removedFromCluster() {
				n.log.Warn("this node was removed from the raft configuration; shutting raft down (join it again to come back)")
				if err := n.raft.Shutdown().Error(); err != nil {
					n.log.Error("shut down raft after removal", "err", err)
				}
			}
		}
		// State as well as the observation: an observation dropped on a full buffer
		// must not hide a shutdown.
		if n.raft.State() == raft.Shutdown {
			n.log.Info("raft has shut down")
			n.markDone()
			return
		}
	}
}

// removedFromCluster reports whether the latest configuration this node holds leaves it
// out. A node that was never joined holds an empty one; a member that lost its leader
// still finds itself in it.
func (n *Node) removedFromCluster() bool {
	ctx, cancel := context.WithTimeout(context.Background(), statusTimeout)
	defer cancel()
	servers, err := n.servers(ctx)
	if err != nil || len(servers) == 0 {
		return false
	}
	for _, s := range servers {
		if s.ID == raft.ServerID(n.cfg.NodeID) {
			return false
		}
	}
	return true
}
