package apiserver

import (
	"context"

	"github.com/raftlvs/raftlvs/cluster"
	"github.com/raftlvs/raftlvs/fsm"
)

// Store is what the API needs of a director's Raft node; *cluster.Node satisfies it.
// Declared here, in the consumer, so handler tests run against a small stateful fake.
type Store interface {
	// Apply prepares (normalizes and validates) a command against the current state and
	// commits it. Off the leader it returns an error wrapping cluster.ErrNotLeader, and
	// then the command was not appended, so the API may forward the request.
	Apply(ctx context.Context, c fsm.Command) error
	// View runs fn with the local replica of the state, read-locked; fn must not keep it.
	View(fn func(*fsm.State))
	Join(ctx context.Context, d fsm.Director) error
	Remove(ctx context.Context, id string) error
	// TransferLeadership hands leadership to the director id, or to a voter the node
	// picks when id is empty.
	TransferLeadership(ctx context.Context, id string) error
	IsLeader() bool
	// LeaderAPIAddr is the HTTP API address (host:port) of the current leader.
	LeaderAPIAddr() (string, error)
	Status() cluster.Status
	// Serving reports whether the local replica may be read: the node has caught up with
	// the cluster and is in touch with its leader. A restarted or cut-off director must
	// not tell an agent that its service does not exist.
	Serving() bool
	// ReadIndex returns once the leader's state holds every write acknowledged before it
	// (a read of the leader's state then sees them all), without logging anything.
	// Leader only: off the leader it fails with cluster.ErrNotLeader.
	ReadIndex(ctx context.Context) error
	// WaitVersion returns once the local replica is at state version v or later, or
	// fails when ctx ends first.
	WaitVersion(ctx context.Context, v uint64) error
	// DryRun prepares (normalizes and validates) a command against the leader's state as
	// Apply would, and commits nothing. Off the leader it fails like Apply.
	DryRun(ctx context.Context, c fsm.Command) error
}
