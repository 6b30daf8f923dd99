package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlvs/raftlvs/fsm"
)

// ErrNoTransferTarget: a planned transfer found no director to hand leadership to. It
// is a conflict with the cluster as it is (fsm.ErrConflict), not a reason to retry at
// once.
var ErrNoTransferTarget = fmt.Errorf("no director to hand leadership to: %w", fsm.ErrConflict)

// maxTransferLag is how far behind the leader's log a voter may be and still be handed
// leadership: raft catches the target up before it hands over, within an election
// timeout or not at all, so a far-behind one would only cost that timeout.
const maxTransferLag = 256

// TransferLeadership hands leadership to the voter id and returns once this node no
// longer leads. Leader only. With id "" it picks the target itself (transferTargets: a
// director, not a witness, eligible, that answered this leader within two heartbeat
// timeouts and is caught up), most caught-up first, trying the next if a transfer
// fails; with none it fails with ErrNoTransferTarget rather than let raft pick, whose
// pick is by replication index alone and may be a voter that cannot be reached. A
// given id must be a voter that answered recently. The leader loop is stopped (its
// duties returned, VIPs released) before the transfer starts, so the new leader never
// overlaps with this one; if every transfer fails and this node still leads, the loop
// starts again. Without a ctx deadline it gives up after defaultOpTimeout.
func (n *Node) TransferLeadership(ctx context.Context, id string) error {
	if !n.IsLeader() {
		return fmt.Errorf("transfer leadership: %w", ErrNotLeader)
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	servers, err := n.servers(ctx)
	if err != nil {
		return fmt.Errorf("transfer leadership: %w", err)
	}
	var targets []raft.Server
	if id != "" {
		t, err := n.namedTarget(servers, id)
		if err != nil {
			return fmt.Errorf("transfer leadership to %s: %w", id, err)
		}
		targets = []raft.Server{t}
	} else {
		n.View(func(st *fsm.State) { targets = n.transferTargets(st, servers) })
		if len(targets) == 0 {
			return fmt.Errorf("transfer leadership: %w: every other voter is a witness, has not answered this leader for %v, is more than %d entries behind, or fails its tracked checks",
				ErrNoTransferTarget, 2*n.cfg.HeartbeatTimeout, maxTransferLag)
		}
	}
	n.transfers.Add(1)
	if err := n.handoverTo(ctx, true); err != nil {
		return fmt.Errorf("transfer leadership: %w", err)
	}
	defer n.handoverTo(context.Background(), false)
	var errs []error
	for _, t := range targets {
		err := n.transferTo(ctx, t)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
		if !n.IsLeader() || ctx.Err() != nil {
			break // leadership moved anyway, or time is up: another target would be wrong
		}
		n.log.Warn("leadership transfer failed; trying the next voter", "target", t.ID, "err", err)
	}
	return errors.Join(errs...)
}

// transferPace spaces the attempts at a target while raft still winds down the
// previous transfer: it answers a transfer's future before it clears its "in
// progress" flag, so one that follows at once is refused.
const transferPace = 20 * time.Millisecond

// transferTo asks raft to hand leadership to t, again while raft refuses because the
// previous transfer has not quite finished.
func (n *Node) transferTo(ctx context.Context, t raft.Server) error {
	for {
		err := n.wait(ctx, "transfer leadership to "+string(t.ID), n.raft.LeadershipTransferToServer(t.ID, t.Address))
		if !errors.Is(err, raft.ErrLeadershipTransferInProgress) || !n.IsLeader() {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(transferPace):
		}
	}
}

// namedTarget is the voter id, if it answered this leader recently: a voter that does
// not would only hold the transfer (and every write) for an election timeout.
func (n *Node) namedTarget(servers []raft.Server, id string) (raft.Server, error) {
	if id == n.cfg.NodeID {
		// Refused before the leader loop stops: raft would refuse it too, after this
		// node had dropped its VIPs for nothing.
		return raft.Server{}, fmt.Errorf("it leads already: %w", fsm.ErrConflict)
	}
	for _, s := range servers {
		if s.ID != raft.ServerID(id) || s.Suffrage != raft.Voter {
			continue
		}
		if _, _, ok := n.recentAnswer(s.ID); !ok {
			return raft.Server{}, fmt.Errorf("%w: it has not answered this leader for %v", ErrNoTransferTarget, 2*n.cfg.HeartbeatTimeout)
		}
		return s, nil
	}
	return raft.Server{}, fmt.Errorf("not a voter: %w", fsm.ErrNotFound)
}

// recentAnswer is when peer id last answered this leader and its last log index then,
// if that was within two heartbeat timeouts and its heartbeats do not fail now. Unlike
// Status, a leader that took over a moment ago gets no grace: the voter must have
// answered it.
func (n *Node) recentAnswer(id raft.ServerID) (time.Time, uint64, bool) {
	a := n.trans.lastAnswer(id)
	if _, failing := n.contacts.failure(string(id), a.at); failing || a.at.IsZero() || time.Since(a.at) >= 2*n.cfg.HeartbeatTimeout {
		return a.at, a.lastLog, false
	}
	return a.at, a.lastLog, true
}

// transferTargets lists the voters a planned transfer may pick (pickTargets), from
// what this leader heard of each.
func (n *Node) transferTargets(st *fsm.State, servers []raft.Server) []raft.Server {
	return pickTargets(st, servers, n.cfg.NodeID, n.raft.LastIndex(), n.cfg.Eligible, func(id raft.ServerID) (uint64, bool) {
		_, lastLog, ok := n.recentAnswer(id)
		return lastLog, ok
	})
}

// pickTargets lists, most caught-up first (then by id), the voters other than self
// with a director entry (so followers can forward to it), not witnesses (they hold no
// VIPs), eligible (their tracked checks pass; nil: all), that answered the leader
// recently (answer) and are at most maxTransferLag entries behind its last index. A
// voter that accepts TCP but is no director (a wrong address joined by hand) never
// answers, so it is never picked.
func pickTargets(st *fsm.State, servers []raft.Server, self string, last uint64, eligible func(string) bool, answer func(raft.ServerID) (uint64, bool)) []raft.Server {
	type candidate struct {
		raft.Server
		lag uint64
	}
	var cs []candidate
	for _, s := range servers {
		d, ok := st.Director(string(s.ID))
		if s.Suffrage != raft.Voter || s.ID == raft.ServerID(self) || !ok || d.Witness {
			continue
		}
		if eligible != nil && !eligible(string(s.ID)) {
			continue
		}
		lastLog, ok := answer(s.ID)
		if lag := last - min(lastLog, last); ok && lag <= maxTransferLag {
			cs = append(cs, candidate{s, lag})
		}
	}
	slices.SortFunc(cs, func(a, b candidate) int { return cmp.Or(cmp.Compare(a.lag, b.lag), cmp.Compare(a.ID, b.ID)) })
	out := make([]raft.Server, len(cs))
	for i, c := range cs {
		out[i] = c.Server
	}
	return out
}
