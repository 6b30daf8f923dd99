package realserver

import (
	"sync"
	"time"

	"github.com/raftlvs/raftlvs/cluster/gossip"
)

// Status is what the agent has done so far, for its metrics.
type Status struct {
	// Ready: the host is configured for every service the cluster knows and the agent
	// announced itself in rotation; false again once it stops (drains).
	Ready    bool
	Stopping bool // draining and leaving
	// Rounds counts the rounds run; Unsettled those that left something to retry (a
	// service the cluster could not resolve, the host not configured).
	Rounds, Unsettled uint64
	LastRound         time.Time
	// Services is how many services this agent serves, Resolved how many the cluster
	// answered for with a service, VIPs the VIP and method pairs configured on the host.
	Services, Resolved, VIPs int
}

// status is the agent's Status, written by its loop.
type status struct {
	mu sync.Mutex
	st Status
}

func (s *status) update(fn func(*Status)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(&s.st)
}

// Status reads what the agent has done so far. Safe to call while it runs.
func (a *Agent) Status() Status {
	a.status.mu.Lock()
	defer a.status.mu.Unlock()
	st := a.status.st
	st.Services = len(a.cfg.Services)
	return st
}

// Status is the agent's Status.
func (d *Daemon) Status() Status { return d.agent.Status() }

// Members lists the gossip pool as the agent sees it.
func (d *Daemon) Members() []gossip.Member { return d.pool.Members() }
