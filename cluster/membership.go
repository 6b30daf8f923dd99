package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlvs/raftlvs/fsm"
)

// joinDialTimeout bounds the leader's reachability check of a joining voter.
const joinDialTimeout = 2 * time.Second

// Join adds a director as a voter and records its entry. Leader only. It is idempotent:
// joining a voter again with the same address changes nothing, and a new address
// replaces the old one. A different server that still holds the same Raft address (a
// reinstalled machine with a new id) is removed first, as Consul and rqlite do, or the
// cluster would count a ghost towards its quorum; the leader's own address is refused
// (fsm.ErrConflict). Before a voter is added or moved, the leader dials its Raft address:
// an unreachable one is refused (fsm.ErrInvalid), since a voter that cannot be reached
// counts towards the quorum all the same (a one-node cluster that adds one stops).
func (n *Node) Join(ctx context.Context, d fsm.Director) error {
	if !n.IsLeader() {
		return fmt.Errorf("join %s: %w", d.ID, ErrNotLeader)
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
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
	var stale []raft.ServerID
	for _, s := range servers {
		switch {
		case s.ID == id && s.Address == addr && s.Suffrage == raft.Voter:
			alreadyVoter = true
		case s.ID != id && s.Address == addr && s.ID == raft.ServerID(n.cfg.NodeID):
			return fmt.Errorf("join %s: raft address %s is the leader's own (%s): %w", d.ID, addr, n.cfg.NodeID, fsm.ErrConflict)
		case s.ID != id && s.Address == addr:
			stale = append(stale, s.ID)
		}
	}
	if !alreadyVoter {
		if err := n.proveRaftPeer(ctx, d); err != nil {
			return fmt.Errorf("join %s: %w", d.ID, err)
		}
	}
	for _, sid := range stale {
		n.log.Warn("removing stale server that holds a joining director's address", "stale_id", sid, "addr", addr, "joining_id", d.ID)
		if err := n.wait(ctx, "remove stale server "+string(sid), n.raft.RemoveServer(sid, 0, timeoutOf(ctx))); err != nil {
			return fmt.Errorf("join %s: %w", d.ID, err)
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
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
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

// servers is the latest Raft configuration.
func (n *Node) servers(ctx context.Context) ([]raft.Server, error) {
	f := n.raft.GetConfiguration()
	if err := n.wait(ctx, "read raft configuration", f); err != nil {
		return nil, err
	}
	return f.Configuration().Servers, nil
}

// dialRaft checks that a TCP connection to a Raft address opens, within joinDialTimeout.
// The connection closes before sending anything; raft's transport takes that quietly.
func dialRaft(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: joinDialTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return conn.Close()
}

// VerifyLeader confirms that this node still leads: raft's VerifyLeader, one round of
// contact with a quorum. The VIP owner calls it before each refresh it announces.
func (n *Node) VerifyLeader(ctx context.Context) error {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	return n.wait(ctx, "verify leadership", n.raft.VerifyLeader())
}
