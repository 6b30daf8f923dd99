package api

import "time"

// NodeStatus is the answering director's view of the Raft cluster.
type NodeStatus struct {
	NodeID       string    `json:"node_id"`
	State        string    `json:"state"` // Follower, Candidate, Leader, Shutdown
	LeaderID     string    `json:"leader_id,omitempty"`
	LeaderAddr   string    `json:"leader_addr,omitempty"`
	Term         uint64    `json:"term"`
	CommitIndex  uint64    `json:"commit_index"`
	AppliedIndex uint64    `json:"applied_index"`
	LastContact  time.Time `json:"last_contact,omitzero"` // last message from the leader; zero on the leader
	Voters       []Voter   `json:"voters"`
	ClusterID    string    `json:"cluster_id,omitempty"`
	StateVersion uint64    `json:"state_version"`
	// Error says why Voters is missing (the configuration could not be read).
	Error string `json:"error,omitempty"`
}

// Voter is one server of the Raft configuration, with its API address when recorded.
type Voter struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	APIAddr  string `json:"api_addr,omitempty"`
	Suffrage string `json:"suffrage"` // Voter, Nonvoter, Staging
}
