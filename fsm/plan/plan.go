// Package plan measures a desired table (services and their real servers, from a file:
// an ipvsadm rule set, a keepalived.conf, an export) against a cluster's state and lists
// the steps, and the fsm commands, that make the cluster so. It is pure: restore
// --replace, keepalived import and declarative apply share it.
package plan

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"

	"github.com/raftlvs/raftlvs/fsm"
)

// Table is a desired set of services and their real servers.
type Table struct {
	Services    []fsm.Service
	RealServers []fsm.RealServer
}

// Options say how far a plan reaches.
type Options struct {
	// Prune removes the cluster's services the table does not name (restore --replace,
	// apply --prune). Agent-registered real servers are never removed.
	Prune bool
	// KeepAgentServices, with Prune, keeps a service the table does not name if agents
	// registered real servers in it (removing it would remove them): apply --prune.
	KeepAgentServices bool
}

// StepOp is what applying a plan does to one service or real server of a cluster.
type StepOp string

const (
	OpCreate StepOp = "create"
	OpChange StepOp = "change"
	OpRemove StepOp = "remove"
)

// Step is one step of applying a plan to a cluster, and the command that makes it.
type Step struct {
	Op         StepOp
	Service    *fsm.Service    // a service created or changed
	RealServer *fsm.RealServer // a real server created, changed or removed
	Fields     []string        // for a change: the settings that differ
	Command    fsm.Command
}

// Changes is a plan measured against a cluster's state.
type Changes struct {
	Steps []Step
	// Unchanged counts the plan's services and real servers the cluster already has as is.
	UnchangedServices, UnchangedServers int
	// Untouched are the cluster's services the table does not mention, left alone (without
	// Prune; with it, they are removed by a step).
	Untouched []string
	// AgentServers are real servers registered by agents in the imported services: the
	// import leaves them to their agents.
	AgentServers []fsm.RealServer
	// KeptForAgents are the services Prune would have removed and KeepAgentServices
	// kept, since agents registered real servers in them.
	KeptForAgents []string
}

// Commands returns the steps' commands, in an order that applies: services before their
// real servers, removals before additions.
func (c *Changes) Commands() []fsm.Command {
	out := make([]fsm.Command, 0, len(c.Steps))
	for _, s := range c.Steps {
		out = append(out, s.Command)
	}
	return out
}

// Against measures the table against a cluster's services and real servers (as the state
// API returns them). A service is identified by what it matches (protocol, address and
// port, or fwmark): if the cluster has it under another name, that name is kept. The
// real servers of a service in the table become those of the table: missing ones are
// created, different ones changed (their admin state kept: a drain in progress stays;
// their health is never the table's), extra ones an operator added are removed; those an
// agent registered are its own. Services the table does not mention are untouched, or
// removed with Prune.
func Against(p Table, services []fsm.Service, servers []fsm.RealServer, opts Options) *Changes {
	c := &Changes{}
	byMatch := make(map[fsm.MatchKey]*fsm.Service, len(services))
	for i := range services {
		byMatch[services[i].Match()] = &services[i]
	}
	current := map[string]map[netip.AddrPort]fsm.RealServer{}
	for _, rs := range servers {
		if current[rs.Service] == nil {
			current[rs.Service] = map[netip.AddrPort]fsm.RealServer{}
		}
		current[rs.Service][netip.AddrPortFrom(rs.Addr, rs.Port)] = rs
	}
	planned := map[string][]fsm.RealServer{}
	for _, rs := range p.RealServers {
		planned[rs.Service] = append(planned[rs.Service], rs)
	}
	imported := map[string]bool{}
	for i := range p.Services {
		want := *p.Services[i].Clone()
		fsm.NormalizeService(&want)
		planName := p.Services[i].Name
		if planName == "" {
			planName = want.Name
		}
		old := byMatch[want.Match()]
		var have map[netip.AddrPort]fsm.RealServer
		if old == nil {
			c.Steps = append(c.Steps, Step{Op: OpCreate, Service: &want, Command: fsm.AddService{Service: *want.Clone()}})
		} else {
			want.Name = old.Name
			imported[old.Name] = true
			have = current[old.Name]
			if diff := serviceDiff(old, &want); len(diff) > 0 {
				c.Steps = append(c.Steps, Step{Op: OpChange, Service: &want, Fields: diff, Command: fsm.EditService{Service: *want.Clone()}})
			} else {
				c.UnchangedServices++
			}
		}
		seen := map[netip.AddrPort]bool{}
		for _, rs := range planned[planName] {
			rs.Service = want.Name
			rs.HealthCheck = rs.HealthCheck.Clone()
			fsm.NormalizeRealServer(&rs, &want)
			ap := netip.AddrPortFrom(rs.Addr, rs.Port)
			seen[ap] = true
			prev, ok := have[ap]
			switch {
			case !ok:
				c.Steps = append(c.Steps, Step{Op: OpCreate, RealServer: &rs, Command: fsm.AddRealServer{RealServer: rs}})
			case prev.IsAgent():
				c.AgentServers = append(c.AgentServers, prev)
			default:
				rs.Admin, rs.Health, rs.HealthReason, rs.HealthSince = prev.Admin, prev.Health, prev.HealthReason, prev.HealthSince
				if diff := serverDiff(&prev, &rs); len(diff) > 0 {
					c.Steps = append(c.Steps, Step{Op: OpChange, RealServer: &rs, Fields: diff, Command: fsm.EditRealServer{RealServer: rs}})
				} else {
					c.UnchangedServers++
				}
			}
		}
		for ap, prev := range have {
			if seen[ap] {
				continue
			}
			if prev.IsAgent() {
				c.AgentServers = append(c.AgentServers, prev)
				continue
			}
			c.Steps = append(c.Steps, Step{Op: OpRemove, RealServer: &prev, Command: fsm.RemoveRealServer{Key: prev.Key()}})
		}
	}
	agentIn := map[string]bool{}
	for _, rs := range servers {
		if rs.IsAgent() {
			agentIn[rs.Service] = true
		}
	}
	for _, s := range services {
		switch {
		case imported[s.Name]:
		case opts.Prune && opts.KeepAgentServices && agentIn[s.Name]:
			c.KeptForAgents = append(c.KeptForAgents, s.Name)
		case opts.Prune:
			svc := s
			c.Steps = append(c.Steps, Step{Op: OpRemove, Service: &svc, Command: fsm.RemoveService{Name: s.Name}})
		default:
			c.Untouched = append(c.Untouched, s.Name)
		}
	}
	c.order()
	return c
}

// order puts removals first (a changed service may no longer take a removed real server,
// and a removed service may free the match a new one takes), then services, then the
// real servers added or changed; within each, plan order.
func (c *Changes) order() {
	rank := func(s Step) int {
		switch {
		case s.Op == OpRemove && s.Service != nil:
			return 0
		case s.Op == OpRemove:
			return 1
		case s.Service != nil:
			return 2
		}
		return 3
	}
	var out []Step
	for r := 0; r < 4; r++ {
		for _, s := range c.Steps {
			if rank(s) == r {
				out = append(out, s)
			}
		}
	}
	c.Steps = out
}

// serviceDiff names the settings of two services that differ (the quorum verdict is the
// state's, not the table's).
func serviceDiff(old, want *fsm.Service) []string {
	return fieldDiff(old, want, "name", "vip", "port", "protocol", "fwmark", "family", "quorum_down")
}

// serverDiff names the settings an import sets on a real server that differ; health and
// the agents' fields are not the import's.
func serverDiff(old, want *fsm.RealServer) []string {
	return fieldDiff(old, want, "service", "addr", "port", "origin", "admin", "health", "health_reason", "health_since")
}

// Fields are v's settings by their API names, each in its JSON form: what a diff
// compares and shows.
func Fields(v any) map[string]string {
	js, _ := json.Marshal(v)
	var m map[string]json.RawMessage
	_ = json.Unmarshal(js, &m)
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}

// fieldDiff compares two values through their JSON form, field by field.
func fieldDiff(a, b any, skip ...string) []string {
	fa, fb := Fields(a), Fields(b)
	for _, s := range skip {
		delete(fa, s)
		delete(fb, s)
	}
	var diff []string
	for k, va := range fa {
		if fb[k] != va {
			diff = append(diff, k)
		}
	}
	for k := range fb {
		if _, ok := fa[k]; !ok {
			diff = append(diff, k)
		}
	}
	slices.Sort(diff)
	return diff
}

// String describes a step for a listing.
func (s Step) String() string {
	switch {
	case s.Service != nil && s.Op == OpRemove:
		return fmt.Sprintf("remove service %s (%s)", s.Service.Name, s.Service.DescribeMatch())
	case s.Service != nil && s.Op == OpChange:
		return fmt.Sprintf("change service %s: %v", s.Service.Name, s.Fields)
	case s.Service != nil:
		return fmt.Sprintf("%s service %s (%s)", s.Op, s.Service.Name, s.Service.DescribeMatch())
	case s.Op == OpChange:
		return fmt.Sprintf("change real server %s of %s: %v", netip.AddrPortFrom(s.RealServer.Addr, s.RealServer.Port), s.RealServer.Service, s.Fields)
	}
	return fmt.Sprintf("%s real server %s of %s", s.Op, netip.AddrPortFrom(s.RealServer.Addr, s.RealServer.Port), s.RealServer.Service)
}
