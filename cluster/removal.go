package cluster

import (
	"context"
	"slices"
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
			n.onObservation(ob)
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

// onObservation records one of raft's observations and, on losing the leader, shuts
// raft down if this node was removed.
func (n *Node) onObservation(ob raft.Observation) {
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

// removedFromCluster reports whether this node was removed: its latest configuration
// leaves it out, after a committed one held it. A joiner replaying the log (or
// installing a snapshot) from before it joined holds configurations without it for a
// while, and may lose its leader then (a leader change, a slow catch-up): it was never
// a member, so it was not removed, and it waits to be replicated to. A node that was
// never joined holds an empty configuration.
func (n *Node) removedFromCluster() bool {
	servers, err := n.configuration()
	return err == nil && len(servers) > 0 && !n.holds(servers) && n.sm.member.Load()
}

// inConfiguration reports whether the latest configuration holds this node (known:
// there is one to go by).
func (n *Node) inConfiguration() (in, known bool) {
	servers, err := n.configuration()
	if err != nil || len(servers) == 0 {
		return false, false
	}
	return n.holds(servers), true
}

// configuration is the latest configuration, committed or not.
func (n *Node) configuration() ([]raft.Server, error) {
	ctx, cancel := context.WithTimeout(context.Background(), statusTimeout)
	defer cancel()
	f := n.raft.GetConfiguration()
	if err := n.wait(ctx, "read raft configuration", f); err != nil {
		return nil, err
	}
	return f.Configuration().Servers, nil
}

func (n *Node) holds(servers []raft.Server) bool {
	return slices.ContainsFunc(servers, func(s raft.Server) bool { return s.ID == raft.ServerID(n.cfg.NodeID) })
}
