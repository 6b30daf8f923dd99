package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/raftlvs/raftlvs/cluster/gossip"
	"github.com/raftlvs/raftlvs/realserver"
)

// AgentSources are what an agent's metrics come from.
type AgentSources struct {
	Agent interface {
		Status() realserver.Status
	}
	Members interface {
		Members() []gossip.Member
	}
}

var (
	agentReady     = desc("agent_ready", "1 once the host is configured for every service the cluster knows and the agent announced itself in rotation; 0 again while it stops.")
	agentStopping  = desc("agent_stopping", "1 while the agent drains and leaves.")
	agentRounds    = desc("agent_rounds_total", "Rounds of the agent's loop: services resolved, the host checked and converged.")
	agentUnsettled = desc("agent_unsettled_rounds_total", "Rounds that left something to retry (a service not resolved, the host not configured).")
	agentLastRound = desc("agent_last_round_timestamp_seconds", "When the agent's last round ended.")
	agentServices  = desc("agent_services", "Services this agent serves.")
	agentResolved  = desc("agent_services_resolved", "Services the cluster answered for.")
	agentVIPs      = desc("agent_vips_configured", "VIP and forwarding-method pairs configured on this host.")
	agentMembers   = desc("agent_gossip_members", "Members of the gossip pool this agent sees, by role and state.", "role", "state")
)

// NewAgent returns the registry of an agent's /metrics.
func NewAgent(src AgentSources) *prometheus.Registry {
	reg := newRegistry("agent")
	reg.MustRegister(&agentCollector{src: src})
	return reg
}

type agentCollector struct{ src AgentSources }

func (c *agentCollector) Describe(chan<- *prometheus.Desc) {}

func (c *agentCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Agent.Status()
	ch <- gauge(agentReady, boolValue(st.Ready))
	ch <- gauge(agentStopping, boolValue(st.Stopping))
	ch <- counter(agentRounds, float64(st.Rounds))
	ch <- counter(agentUnsettled, float64(st.Unsettled))
	if !st.LastRound.IsZero() {
		ch <- gauge(agentLastRound, float64(st.LastRound.UnixMilli())/1e3)
	}
	ch <- gauge(agentServices, float64(st.Services))
	ch <- gauge(agentResolved, float64(st.Resolved))
	ch <- gauge(agentVIPs, float64(st.VIPs))
	if c.src.Members == nil {
		return
	}
	type key struct{ role, state string }
	counts := map[key]int{}
	for _, role := range []string{gossip.RoleDirector.String(), gossip.RoleAgent.String()} {
		for _, state := range []string{"alive", "suspect", "dead", "left"} {
			counts[key{role, state}] = 0
		}
	}
	for _, m := range c.src.Members.Members() {
		role := m.Meta.Role.String()
		if m.MetaErr != nil {
			role = "unknown"
		}
		counts[key{role, m.StateName()}]++
	}
	for k, n := range counts {
		ch <- gauge(agentMembers, float64(n), k.role, k.state)
	}
}
