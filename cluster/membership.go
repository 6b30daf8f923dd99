package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlvs/raftlvs/fsm"
)

// Join adds a director as a voter and records its entry. Leader only. It is idempotent:
// joining a voter again with the same address changes nothing, and a new address
// replaces the old one. A different server that still holds the same Raft address (a
// reinstalled machine with a new id) is removed first, as Consul and rqlite do, or the
// cluster would count a ghost towards its quorum.
func (n *Node) Join(ctx context.Context, d fsm.Director) error {
	if !n.IsLeader() {
		return fmt.Errorf("join %s: %w", d.ID, ErrNotLeader)
	}
	// Check the entry first so a voter is never added with an address its own
	// registration would be refused for.
	var err error
	n.View(func(s *fsm.State) { err = s.Check(fsm.RegisterDirector{Director: d}) })
	if err != nil {
		return fmt.Errorf("join %s: %w", d.ID, err)
	}
	servers, err := n.servers(ctx)
	if err != nil {
		return fmt.Errorf("join %s: %w", d.ID, err)
	}
	id, addr := raft.ServerID(d.ID), raft.ServerAddress(d.RaftAddr)
	alreadyVoter := false
	for _, s := range servers {
		switch {
		case s.ID == id && s.Address == addr && s.Suffrage == raft.Voter:
			alreadyVoter = true
		case s.ID != id && s.Address == addr:
			n.log.Warn("removing stale server that holds a joining director's address", "stale_id", s.ID, "addr", addr, "joining_id", d.ID)
			if err := n.wait(ctx, "remove stale server "+string(s.ID), n.raft.RemoveServer(s.ID, 0, timeoutOf(ctx))); err != nil {
				return fmt.Errorf("join %s: %w", d.ID, err)
			}
		}
	}
	if !alreadyVoter {
		// AddVoter on a known id updates its address in place.
		if err := n.wait(ctx, "add voter "+d.ID, n.raft.AddVoter(id, addr, 0, timeoutOf(ctx))); err != nil {
			return fmt.Errorf("join %s: %w", d.ID, err)
		}
	}
	var current fsm.Director
	var ok bool
	n.View(func(s *fsm.State) { current, ok = s.Director(d.ID) })
	if ok && current == d {
		return nil
	}
	if err := n.Apply(ctx, fsm.RegisterDirector{Director: d}); err != nil {
		return fmt.Errorf("join %s: record director: %w", d.ID, err)
	}
	return nil
}

// Remove takes a director out of the voter set and forgets its entry. Leader only. The
// leader cannot remove itself (that would leave the cluster leaderless mid-change): use
// Leave on it, which hands leadership over first. An id that is neither a server nor a
// director fails with fsm.ErrNotFound.
func (n *Node) Remove(ctx context.Context, id string) error {
	if !n.IsLeader() {
		return fmt.Errorf("remove %s: %w", id, ErrNotLeader)
	}
	if id == n.cfg.NodeID {
		return fmt.Errorf("remove %s: it is the leader; use leave to hand leadership over first: %w", id, fsm.ErrConflict)
	}
	servers, err := n.servers(ctx)
	if err != nil {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	inConfig := false
	for _, s := range servers {
		inConfig = inConfig || s.ID == raft.ServerID(id)
	}
	var registered bool
	n.View(func(s *fsm.State) { _, registered = s.Director(id) })
	if !inConfig && !registered {
		return fmt.Errorf("remove %s: no such director: %w", id, fsm.ErrNotFound)
	}
	if inConfig {
		if err := n.wait(ctx, "remove server "+id, n.raft.RemoveServer(raft.ServerID(id), 0, timeoutOf(ctx))); err != nil {
			return fmt.Errorf("remove %s: %w", id, err)
		}
	}
	if registered {
		if err := n.Apply(ctx, fsm.RemoveDirector{ID: id}); err != nil && !errors.Is(err, fsm.ErrNotFound) {
			return fmt.Errorf("remove %s: forget director: %w", id, err)
		}
	}
	return nil
}

// TransferLeadership hands leadership to the voter id ("" lets raft pick the most
// up-to-date one) and returns once this node no longer leads. Leader only. The leader
// loop is stopped (OnLeader returned, VIPs released) before the transfer starts, so the
// new leader never overlaps with this one; if the transfer fails and this node still
// leads, the loop starts again.
func (n *Node) TransferLeadership(ctx context.Context, id string) error {
	if !n.IsLeader() {
		return fmt.Errorf("transfer leadership: %w", ErrNotLeader)
	}
	var target raft.Server
	if id != "" {
		servers, err := n.servers(ctx)
		if err != nil {
			return fmt.Errorf("transfer leadership to %s: %w", id, err)
		}
		for _, s := range servers {
			if s.ID == raft.ServerID(id) && s.Suffrage == raft.Voter {
				target = s
			}
		}
		if target.ID == "" {
			return fmt.Errorf("transfer leadership to %s: not a voter: %w", id, fsm.ErrNotFound)
		}
	}
	if err := n.handoverTo(ctx, true); err != nil {
		return fmt.Errorf("transfer leadership: %w", err)
	}
	defer n.handoverTo(context.Background(), false)
	var f raft.Future
	if target.ID == "" {
		f = n.raft.LeadershipTransfer()
	} else {
		f = n.raft.LeadershipTransferToServer(target.ID, target.Address)
	}
	if err := n.wait(ctx, "transfer leadership", f); err != nil {
		return err
	}
	return nil
}

// AskLeaderToRemove asks the current leader, at its API address, to remove director id.
// The HTTP layer implements it by forwarding; an error wrapping ErrNotLeader or
// ErrNoLeader (the leader changed) makes Leave look for the leader again.
type AskLeaderToRemove func(ctx context.Context, leaderAPIAddr, id string) error

// leaveRetryInterval paces Leave while it waits for a new leader to be known.
const leaveRetryInterval = 100 * time.Millisecond

// Leave takes this node out of the cluster for good: if it leads, it hands leadership
// over first; then it asks the leader to remove it, through ask, until the leader
// confirms or ctx ends. The last voter cannot leave. Close the node afterwards; its data
// dir no longer belongs to the cluster (a node that comes back must be joined again).
func (n *Node) Leave(ctx context.Context, ask AskLeaderToRemove) error {
	for {
		if n.IsLeader() {
			if err := n.handOverToLeave(ctx); err != nil {
				return fmt.Errorf("leave: %w", err)
			}
		}
		err := n.askLeaderToRemove(ctx, ask)
		switch {
		case err == nil, errors.Is(err, fsm.ErrNotFound): // a retry after a lost reply
			n.log.Info("left the cluster")
			return nil
		case !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrNoLeader):
			return fmt.Errorf("leave: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("leave: %w (last attempt: %w)", ctx.Err(), err)
		case <-time.After(leaveRetryInterval):
		}
	}
}

// handOverToLeave transfers leadership away, unless this is the last voter.
func (n *Node) handOverToLeave(ctx context.Context) error {
	servers, err := n.servers(ctx)
	if err != nil {
		return err
	}
	voters := 0
	for _, s := range servers {
		if s.Suffrage == raft.Voter {
			voters++
		}
	}
	if voters <= 1 {
		return fmt.Errorf("%s is the last voter: %w", n.cfg.NodeID, fsm.ErrConflict)
	}
	return n.TransferLeadership(ctx, "")
}

func (n *Node) askLeaderToRemove(ctx context.Context, ask AskLeaderToRemove) error {
	leader, _ := n.Leader()
	if leader == n.cfg.NodeID {
		// The transfer is not visible yet, or this node won the election again.
		return fmt.Errorf("this node still leads: %w", ErrNotLeader)
	}
	addr, err := n.LeaderAPIAddr()
	if err != nil {
		return err
	}
	return ask(ctx, addr, n.cfg.NodeID)
}

// servers is the latest Raft configuration.
func (n *Node) servers(ctx context.Context) ([]raft.Server, error) {
	f := n.raft.GetConfiguration()
	if err := n.wait(ctx, "read raft configuration", f); err != nil {
		return nil, err
	}
	return f.Configuration().Servers, nil
}
