package cluster

import (
	"strconv"
	"time"

	"github.com/hashicorp/raft"
)

// readyPollInterval paces a follower's catch-up check. raft publishes its applied index
// but no event when it moves (and entries such as no-ops never reach the FSM), so the
// check polls; it stops for good once the node is ready.
const readyPollInterval = 25 * time.Millisecond

// Ready is closed, once and for good, when this node's state has caught up with the
// cluster for the first time since Open: as leader, once its leader loop's Barrier has
// applied everything committed before; as follower, once it knows a leader and has
// applied everything up to the commit index that leader first announced to it. Until
// then the state is the last snapshot, or empty: raft re-applies the log after a snapshot
// only once a leader says how much of it is committed. Consumers that act on the whole
// state (the IPVS reconciler deletes what the state lacks; the API answers 404) wait for
// it. A node that never reaches a quorum never becomes ready.
func (n *Node) Ready() <-chan struct{} { return n.ready }

// Serving reports whether this node's state may be served now: it is Ready, and it either
// leads or knows a leader it heard from within two heartbeat timeouts. A follower cut off
// from the cluster stops serving, so readers get a refusal (the API's 503) rather than a
// state that no longer changes when the cluster's does.
func (n *Node) Serving() bool {
	select {
	case <-n.ready:
	default:
		return false
	}
	switch n.raft.State() {
	case raft.Leader:
		return true
	case raft.Follower:
		id, _ := n.Leader()
		return id != "" && time.Since(n.raft.LastContact()) < 2*n.cfg.HeartbeatTimeout
	}
	return false
}

func (n *Node) markReady(how string) {
	n.readyOnce.Do(func() {
		n.log.Info("ready: state caught up with the cluster", "as", how, "applied_index", n.raft.AppliedIndex())
		close(n.ready)
	})
}

// watchReadiness marks a follower ready once it has applied what its leader first said
// was committed. (A leader is marked ready by its leader loop.)
func (n *Node) watchReadiness() {
	defer n.background.Done()
	tick := time.NewTicker(readyPollInterval)
	defer tick.Stop()
	var target uint64 // the first commit index a leader announced; 0 until one did
	for {
		select {
		case <-n.ready:
			return
		case <-n.shutdownCh:
			return
		case <-tick.C:
		}
		if !n.followsLeader() {
			continue
		}
		if target == 0 {
			target = n.trans.leaderCommit()
		}
		if target != 0 && n.hasApplied(target) {
			n.markReady("follower")
			return
		}
	}
}

// followsLeader reports whether this node is a follower that knows another node leads.
func (n *Node) followsLeader() bool {
	id, _ := n.Leader()
	return n.raft.State() == raft.Follower && id != "" && id != n.cfg.NodeID
}

// hasApplied reports whether this node's state includes every entry up to index. raft's
// AppliedIndex counts an entry once it is queued for the FSM, so the entries between what
// the state machine has really applied and index are looked up: the answer is no while
// a command among them is still queued. (No-ops never reach the FSM; configuration
// entries reach only its StoreConfiguration and are not waited for.) A snapshot restore moves the state forward without an Apply; raft records
// the snapshot's index once the restore is done.
func (n *Node) hasApplied(index uint64) bool {
	if n.raft.AppliedIndex() < index {
		return false
	}
	from := max(n.sm.applied.Load(), n.lastSnapshotIndex())
	for i := index; i > from; i-- {
		var l raft.Log
		if err := n.store.GetLog(i, &l); err != nil {
			return false // compacted meanwhile: look again on the next tick
		}
		if l.Type == raft.LogCommand {
			return false
		}
	}
	return true
}

// lastSnapshotIndex is the index of the snapshot raft last took or restored; raft
// publishes it only through Stats.
func (n *Node) lastSnapshotIndex() uint64 {
	i, _ := strconv.ParseUint(n.raft.Stats()["last_snapshot_index"], 10, 64)
	return i
}
