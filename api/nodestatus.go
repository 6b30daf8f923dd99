package api

import "time"

// NodeStatus is the answering director's view of the Raft cluster.
type NodeStatus struct {
	NodeID       string `json:"node_id"`
	State        string `json:"state"` // Follower, Candidate, Leader, Shutdown
	LeaderID     string `json:"leader_id,omitempty"`
	LeaderAddr   string `json:"leader_addr,omitempty"`
	Term         uint64 `json:"term"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	// LeaderCommitIndex is the highest commit index the answering director heard of:
	// LeaderCommitIndex - AppliedIndex is how far its state lags the cluster.
	LeaderCommitIndex uint64    `json:"leader_commit_index"`
	LastContact       time.Time `json:"last_contact,omitzero"` // last message from the leader; zero on the leader
	Voters            []Voter   `json:"voters"`
	ClusterID         string    `json:"cluster_id,omitempty"`
	StateVersion      uint64    `json:"state_version"`
	// Serving is false while the answering director's state may be stale: it has not
	// caught up yet, or it is a follower that lost its leader.
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
	// Contact is how the voter is doing as the answering director knows it: "self",
	// "reachable", "unreachable", or "unknown" (a follower knows only its leader; the
	// leader knows every voter from its heartbeats).
	Contact string `json:"contact,omitempty"`
	// LastContact is when the answering director last heard from the voter, where it
	// knows: a follower of its leader, the leader of an unreachable voter.
	LastContact time.Time `json:"last_contact,omitzero"`
	// FailingSince is when the leader's heartbeats to an unreachable voter began failing.
	FailingSince time.Time `json:"failing_since,omitzero"`
	// LastLogIndex is the last index of the voter's log as the answering director knows
	// it: its own, and on the leader each follower's latest answer; the leader's minus a
	// follower's is how far that follower lags.
	LastLogIndex uint64 `json:"last_log_index,omitempty"`
}

// Voter contacts.
const (
	ContactSelf        = "self"
	ContactReachable   = "reachable"
	ContactUnreachable = "unreachable"
	ContactUnknown     = "unknown"
)
