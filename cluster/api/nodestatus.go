package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/raftlvs/raftlvs/cluster"
)

// NodeStatus is this node's view of the Raft cluster.
type NodeStatus = cluster.Status

var errNotLeader = cluster.ErrNotLeader

// unavailable reports errors that mean "no leader can take this write now": the caller
// may retry later (after reading, for a lost leadership whose write may have landed).
func unavailable(err error) bool {
	return errors.Is(err, ErrUnavailable) || errors.Is(err, cluster.ErrNotLeader) ||
		errors.Is(err, cluster.ErrNoLeader) || errors.Is(err, cluster.ErrLeadershipLost) ||
		errors.Is(err, cluster.ErrClosed) || errors.Is(err, context.DeadlineExceeded)
}

// RemoveAtLeader asks the leader's API to remove director id; it is a
// cluster.AskLeaderToRemove for cluster.Node.Leave. The request is marked as already
// forwarded as far as allowed, so a node that no longer leads answers 503 instead of
// forwarding, and that comes back wrapping cluster.ErrNotLeader for Leave to look again.
func RemoveAtLeader(hc *http.Client) cluster.AskLeaderToRemove {
	return func(ctx context.Context, leaderAPIAddr, id string) error {
		c := &Client{Addrs: []string{leaderAPIAddr}, HTTP: hc, hops: MaxForwardHops}
		err := c.Leave(ctx, id)
		if errors.Is(err, ErrUnavailable) {
			return fmt.Errorf("remove %s at %s: %w: %w", id, leaderAPIAddr, err, cluster.ErrNotLeader)
		}
		return err
	}
}

var _ cluster.AskLeaderToRemove = RemoveAtLeader(nil)
