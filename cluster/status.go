package cluster

import (
	"context"
	"strconv"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// Status is this node's view of the cluster, for GET /v1/status.
type Status struct {
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
	// Term is only published through Stats.
	st.Term, _ = strconv.ParseUint(n.raft.Stats()["term"], 10, 64)
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
	for _, s := range servers {
		st.Voters = append(st.Voters, Voter{
			ID:       string(s.ID),
			RaftAddr: string(s.Address),
			APIAddr:  directors[string(s.ID)].APIAddr,
			Suffrage: s.Suffrage.String(),
		})
	}
	return st
}
