//go:build linux

package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/fsm"
)

// Converged is the cluster once every director agrees: each one's own replica (read
// from it alone, without asking the leader) and when it was read.
type Converged struct {
	Leader string
	Took   time.Duration
	States map[string]*api.StateDump
	ReadAt map[string][2]time.Duration // the read's call and return, the run's clock
}

// Converge waits up to limit for every director to serve under one leader, at one
// state version, with equal replicas, and for the leader alone to hold the VIP. It
// returns the last disagreement when they do not.
func (c *Cluster) Converge(limit time.Duration, arp *ARPWatch) (*Converged, error) {
	start := time.Now()
	var why string
	for deadline := start.Add(limit); ; time.Sleep(250 * time.Millisecond) {
		conv, reason := c.agree(arp)
		if conv != nil {
			conv.Took = time.Since(start)
			return conv, nil
		}
		why = reason
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the directors did not converge within %v: %s", limit, why)
		}
	}
}

func (c *Cluster) agree(arp *ARPWatch) (*Converged, string) {
	conv := &Converged{States: map[string]*api.StateDump{}, ReadAt: map[string][2]time.Duration{}}
	var first []byte
	for _, id := range c.IDs {
		st, err := c.Status(id)
		if err != nil {
			return nil, fmt.Sprintf("%s: %v", id, err)
		}
		if !st.Node.Serving || st.Node.LeaderID == "" {
			return nil, fmt.Sprintf("%s does not serve (leader %q)", id, st.Node.LeaderID)
		}
		if conv.Leader != "" && st.Node.LeaderID != conv.Leader {
			return nil, fmt.Sprintf("%s names leader %s, another %s", id, st.Node.LeaderID, conv.Leader)
		}
		conv.Leader = st.Node.LeaderID
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		call := c.since()
		dump, err := c.Client(2*time.Second, id).State(ctx)
		ret := c.since()
		cancel()
		if err != nil {
			return nil, fmt.Sprintf("state of %s: %v", id, err)
		}
		b, _ := json.Marshal(dump)
		if first != nil && string(b) != string(first) {
			return nil, fmt.Sprintf("%s's replica (version %d) differs from %s's", id, dump.Version, c.IDs[0])
		}
		first = b
		conv.States[id], conv.ReadAt[id] = dump, [2]time.Duration{call, ret}
	}
	if h := c.Holders(); !slices.Equal(h, []string{conv.Leader}) {
		return nil, fmt.Sprintf("the VIP is on %v, the leader is %s", h, conv.Leader)
	}
	if a := arp.Answerers(5); !slices.Equal(a, []string{conv.Leader}) {
		return nil, fmt.Sprintf("ARP for the VIP answered by %v, the leader is %s", a, conv.Leader)
	}
	return conv, ""
}

// FinalReads are reads of every register from each director's converged replica, for
// the linearizability check: they come after every other operation.
func (cv *Converged) FinalReads(ids []string, keys int) []Op {
	var out []Op
	for i, id := range ids {
		d := cv.States[id]
		rss := slices.DeleteFunc(slices.Clone(d.RealServers), func(rs fsm.RealServer) bool { return rs.Service != regService })
		at := cv.ReadAt[id]
		out = append(out, Op{Client: 1000 + i, Kind: Read, Via: id, Values: registers(rss, keys), Call: at[0], Return: at[1], Outcome: OK})
	}
	return out
}
