package cluster

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlvs/raftlvs/fsm"
)

// Status is this node's view of the cluster, for GET /v1/status.
type Status struct {
	NodeID       string `json:"node_id"`
	State        string `json:"state"` // Follower, Candidate, Leader, Shutdown
	LeaderID     string `json:"leader_id,omitempty"`
	LeaderAddr   string `json:"leader_addr,omitempty"`
	Term         uint64 `json:"term"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	// LeaderCommitIndex is the highest commit index a leader announced to this node (its
	// own on the leader): LeaderCommitIndex - AppliedIndex is how far it lags.
	LeaderCommitIndex uint64    `json:"leader_commit_index"`
	LastContact       time.Time `json:"last_contact,omitzero"` // last message from the leader; zero on the leader
	Voters            []Voter   `json:"voters"`
	ClusterID         string    `json:"cluster_id,omitempty"`
	StateVersion      uint64    `json:"state_version"`
	// Serving is false while this node's state may not be read: not caught up yet, or a
	// follower that lost its leader (Node.Serving).
	Serving bool `json:"serving"`
	// Error says why Voters is missing (the configuration could not be read).
	Error string `json:"error,omitempty"`
}

// Voter is one server of the Raft configuration, with its API address when recorded.
type Voter struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	APIAddr  string `json:"api_addr,omitempty"`
	Suffrage string `json:"suffrage"` // Voter, Nonvoter, Staging
	// Contact is how the voter is doing as this node knows it (voterContact): the
	// leader knows every voter from its heartbeats, a follower only its leader.
	Contact Contact `json:"contact"`
	// LastContact is the last time this node heard from the voter, where it knows:
	// a follower of its leader, the leader of an unreachable voter (zero: never).
	LastContact time.Time `json:"last_contact,omitzero"`
	// FailingSince is when the leader's heartbeats to an unreachable voter began failing.
	FailingSince time.Time `json:"failing_since,omitzero"`
	// LastLogIndex is the last index of the voter's log, as its latest answer to the
	// leader said (this node's own for itself): the leader's minus it is how far it lags.
	LastLogIndex uint64 `json:"last_log_index,omitempty"`
}

// statusTimeout bounds reading the Raft configuration for a status report.
const statusTimeout = 2 * time.Second

// Status reports this node's view of the cluster.
func (n *Node) Status() Status {
	leaderID, leaderAddr := n.Leader()
	st := Status{
		NodeID:       n.cfg.NodeID,
		State:        n.raft.State().String(),
		LeaderID:     leaderID,
		LeaderAddr:   leaderAddr,
		CommitIndex:  n.raft.CommitIndex(),
		AppliedIndex: n.raft.AppliedIndex(),
	}
	st.Term = n.raft.CurrentTerm()
	st.Serving = n.Serving()
	st.LeaderCommitIndex = max(n.trans.leaderCommit(), st.CommitIndex)
	if !n.IsLeader() {
		st.LastContact = n.raft.LastContact()
	}
	var directors map[string]fsm.Director
	n.View(func(s *fsm.State) {
		st.ClusterID = s.ClusterID()
		st.StateVersion = s.Version()
		directors = make(map[string]fsm.Director)
		for _, d := range s.Directors() {
			directors[d.ID] = d
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), statusTimeout)
	defer cancel()
	servers, err := n.servers(ctx)
	if err != nil {
		st.Error = err.Error()
		return st
	}
	st.Voters = make([]Voter, 0, len(servers))
	leading := st.State == raft.Leader.String()
	for _, s := range servers {
		v := Voter{
			ID:       string(s.ID),
			RaftAddr: string(s.Address),
			APIAddr:  directors[string(s.ID)].APIAddr,
			Suffrage: s.Suffrage.String(),
		}
		n.voterContact(&v, leaderID, leading)
		st.Voters = append(st.Voters, v)
	}
	slices.SortFunc(st.Voters, func(a, b Voter) int { return cmp.Compare(a.ID, b.ID) })
	return st
}
