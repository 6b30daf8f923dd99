package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/raftlvs/raftlvs/cluster"
	"github.com/raftlvs/raftlvs/cluster/gossip"
	"github.com/raftlvs/raftlvs/fsm"
)

// openDirectorPool joins this director to the gossip pool it shares with the agents. The
// other directors' gossip addresses come from the replicated state (joinDirectorsGossip),
// so a director needs no gossip join list of its own. The pool is told apart from other
// clusters' by its key, not by a label: a label that one director forgot would cut it
// off from every agent.
func openDirectorPool(cfg *directorConfig, gossipAddr string, key []byte, log *slog.Logger) (*gossip.Pool, error) {
	host, port, err := splitHostPort(gossipAddr)
	if err != nil {
		return nil, usagef("--gossip-addr: %v", err)
	}
	pool, err := gossip.New(gossip.Config{
		NodeName:  cfg.ID,
		BindAddr:  host,
		BindPort:  port,
		SecretKey: key,
		Logger:    log,
	}, gossip.Meta{Role: gossip.RoleDirector, ID: cfg.ID, APIAddr: cfg.APIAddr})
	if err != nil {
		return nil, fmt.Errorf("join the gossip pool: %w", err)
	}
	return pool, nil
}

// joinDirectorsGossip keeps this director in gossip contact with the directors the state
// lists: at start, on every state change and every few seconds, it joins those the pool
// does not see alive.
func joinDirectorsGossip(ctx context.Context, pool *gossip.Pool, node *cluster.Node, log *slog.Logger) {
	changes, cancel := node.Watch()
	defer cancel()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		alive := map[string]bool{}
		for _, m := range pool.Members() {
			alive[m.Name] = m.State == gossip.StateAlive
		}
		var missing []string
		node.View(func(st *fsm.State) {
			for _, d := range st.Directors() {
				if d.ID != node.ID() && d.GossipAddr != "" && !alive[d.ID] {
					missing = append(missing, d.GossipAddr)
				}
			}
		})
		if len(missing) > 0 {
			if _, err := pool.Join(missing); err != nil {
				log.Debug("gossip join of directors", "addrs", missing, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-changes:
		case <-tick.C:
		}
	}
}

// agentStatus is one agent as `raftlvs status` lists it.
type agentStatus struct {
	ID       string               `json:"id"`
	Gossip   netip.AddrPort       `json:"gossip"`
	State    string               `json:"state"` // alive, suspect, dead, left
	Addr     netip.Addr           `json:"addr,omitzero"`
	Services []gossip.ServicePort `json:"services,omitempty"`
	Draining bool                 `json:"draining,omitempty"`
	Error    string               `json:"error,omitempty"`
}

// agentsOf lists the agents of the pool for the status endpoint.
func agentsOf(pool *gossip.Pool) []agentStatus {
	out := []agentStatus{}
	for _, m := range pool.Members() {
		if m.MetaErr == nil && m.Meta.Role != gossip.RoleAgent {
			continue
		}
		a := agentStatus{ID: m.Name, Gossip: m.Addr, State: memberState(m), Addr: m.Meta.Addr,
			Services: m.Meta.Services, Draining: m.Meta.Draining}
		if m.MetaErr != nil {
			a.Error = m.MetaErr.Error()
		}
		out = append(out, a)
	}
	return out
}

func memberState(m gossip.Member) string {
	switch m.State {
	case gossip.StateAlive:
		return "alive"
	case gossip.StateDead:
		return "dead"
	case gossip.StateLeft:
		return "left"
	}
	return "suspect"
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port in %q", addr)
	}
	return host, port, nil
}
