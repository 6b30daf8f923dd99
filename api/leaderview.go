package api

import (
	"cmp"
	"context"
	"time"
)

// leaderViewTimeout bounds the extra call of WithLeadersView: a status shown late for
// want of the leader's view is worse than one without it.
const leaderViewTimeout = 3 * time.Second

// WithLeadersView replaces the voters' reachability in a follower's status with its
// leader's view: a follower hears only from its leader, the leader from every voter. It
// asks the leader (at the API address the status names) for its own status; when the
// leader cannot be asked, st is left as it is, whose "unknown" says so. The leader's
// times are shifted onto the follower's clock by the gap between the two answers.
func (c *Client) WithLeadersView(ctx context.Context, st *StatusResponse) {
	n := &st.Node
	if n.LeaderID == "" || n.LeaderID == n.NodeID {
		return
	}
	var leaderAPI string
	for _, v := range n.Voters {
		if v.ID == n.LeaderID {
			leaderAPI = v.APIAddr
		}
	}
	if leaderAPI == "" {
		return
	}
	lc := &Client{Addrs: []string{leaderAPI}, HTTP: c.HTTP, Token: c.Token, HTTPS: c.HTTPS,
		Timeout: min(cmp.Or(c.Timeout, DefaultClientTimeout), leaderViewTimeout)}
	// Its view of the voters now, not of the table: no barrier first.
	ls, err := lc.Status(ctx, false)
	if err != nil || ls.Node.NodeID != n.LeaderID || ls.Node.State != "Leader" {
		return
	}
	seen := map[string]Voter{}
	for _, v := range ls.Node.Voters {
		seen[v.ID] = v
	}
	shift := st.At.Sub(ls.At)
	for i, v := range n.Voters {
		lv, ok := seen[v.ID]
		if !ok || v.ID == n.NodeID || v.ID == n.LeaderID {
			continue // itself, and its own contact with its leader, the follower knows best
		}
		n.Voters[i].Contact = lv.Contact
		n.Voters[i].LastContact, n.Voters[i].FailingSince = shiftTime(lv.LastContact, shift), shiftTime(lv.FailingSince, shift)
		if n.Voters[i].Contact == ContactReachable || n.Voters[i].Contact == ContactUnreachable {
			n.Voters[i].Contact += " (leader's view)"
		}
	}
}

func shiftTime(t time.Time, d time.Duration) time.Time {
	if t.IsZero() {
		return t
	}
	return t.Add(d)
}
