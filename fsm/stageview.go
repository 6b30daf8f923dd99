package fsm

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
)

// Preparing a chunk: it is normalized against the state as the chunks of its transaction
// staged below it will leave it, without applying anything, and restores are cut so that
// chunks do not depend on each other.

// prepareStage normalizes a chunk against the state as its transaction's earlier chunks
// and its own earlier commands leave it, without applying anything: the state is only
// read. Nested batches are flattened (the transaction is atomic anyway).
func (s *State) prepareStage(c StageChunk) (Command, error) {
	c.At = c.At.UTC().Round(0)
	if c.At.IsZero() {
		return nil, invalid("at", "a chunk needs the leader's time")
	}
	if _, err := stageable(c.Commands); err != nil {
		return nil, err
	}
	flat := flatten(nil, c.Commands)
	v := s.stageView(c.Tx, c.Seq, flat)
	c.Commands = make([]Command, len(flat))
	for i, sub := range flat {
		n, err := normalize(v, sub)
		if err == nil {
			err = v.known(n, c.Tx)
		}
		if err != nil {
			return nil, fmt.Errorf("command %d: %w", i+1, err)
		}
		v.record(n)
		c.Commands[i] = n
	}
	if err := checkStatic(c); err != nil {
		return nil, err
	}
	if err := c.check(s); err != nil {
		return nil, err
	}
	return c, nil
}

func flatten(out, cmds []Command) []Command {
	for _, c := range cmds {
		if b, ok := c.(Batch); ok {
			out = flatten(out, b.Commands)
			continue
		}
		out = append(out, c)
	}
	return out
}

// stageView is the state as a staged transaction will leave it, as far as normalizing
// needs: services and real servers, for the services a chunk names.
type stageView struct {
	base     *State
	want     map[string]bool                  // the services looked up
	services map[string]*Service              // nil: removed by the transaction
	servers  map[string]map[RSKey]*RealServer // nil: removed by the transaction
	cleared  map[string]bool                  // removed by the transaction: base's real servers are gone
}

// stageView replays, for the services the chunk's commands look up, what the chunks of
// tx below seq do: one pass over those chunks, no copy of the state.
func (s *State) stageView(tx string, seq int, chunk []Command) *stageView {
	v := &stageView{base: s, want: map[string]bool{}, services: map[string]*Service{},
		servers: map[string]map[RSKey]*RealServer{}, cleared: map[string]bool{}}
	for _, c := range chunk {
		switch c := c.(type) {
		case AddRealServer:
			v.want[c.RealServer.Service] = true
		case EditRealServer:
			v.want[c.RealServer.Service] = true
		}
	}
	staged := s.staged[tx]
	if staged == nil || len(v.want) == 0 {
		return v
	}
	for _, earlier := range slices.Sorted(maps.Keys(staged.chunks)) {
		if earlier >= seq {
			break
		}
		for _, c := range flatten(nil, staged.chunks[earlier]) {
			v.record(c)
		}
	}
	return v
}

func (v *stageView) directorAt(a netip.Addr) (string, bool) { return v.base.directorAt(a) }

func (v *stageView) service(name string) *Service {
	if svc, ok := v.services[name]; ok {
		return svc
	}
	return v.base.services[name]
}

func (v *stageView) server(k RSKey) (*RealServer, bool) {
	if rs, ok := v.servers[k.Service][k]; ok {
		return rs, rs != nil
	}
	if v.cleared[k.Service] {
		return nil, false
	}
	return v.base.server(k)
}

// record notes what c, a normalized leaf command, does to the services looked up. It
// copies only what it keeps: most commands of a large transaction are not looked up.
func (v *stageView) record(c Command) {
	switch c := c.(type) {
	case AddService:
		v.putService(&c.Service)
	case EditService:
		v.putService(&c.Service)
	case RemoveService:
		if v.want[c.Name] {
			v.services[c.Name] = nil
			delete(v.servers, c.Name)
			v.cleared[c.Name] = true
		}
	case AddRealServer:
		v.putServer(&c.RealServer)
	case EditRealServer:
		v.putServer(&c.RealServer)
	case RemoveRealServer:
		if v.want[c.Key.Service] {
			v.serversOf(c.Key.Service)[c.Key] = nil
		}
	}
}

func (v *stageView) putService(svc *Service) {
	if v.want[svc.Name] {
		kept := *svc
		v.services[svc.Name] = &kept
	}
}

func (v *stageView) putServer(rs *RealServer) {
	if v.want[rs.Service] {
		kept := *rs
		v.serversOf(rs.Service)[rs.Key()] = &kept
	}
}

func (v *stageView) serversOf(service string) map[RSKey]*RealServer {
	m := v.servers[service]
	if m == nil {
		m = map[RSKey]*RealServer{}
		v.servers[service] = m
	}
	return m
}

// known refuses a real server for a service that neither the state nor the chunks
// staged before hold: the commit would fail, and the defaults that come from the service
// (its port, start_down) could not be filled in.
func (v *stageView) known(c Command, tx string) error {
	var name string
	switch c := c.(type) {
	case AddRealServer:
		name = c.RealServer.Service
	case EditRealServer:
		name = c.RealServer.Service
	default:
		return nil
	}
	if v.service(name) == nil {
		return notFound("service", "no service %s, in the state or in the chunks of %s staged before this one", cmp.Or(name, `""`), tx)
	}
	return nil
}

// SplitForStaging cuts commands into chunks of at most max commands each, for StageChunk,
// cutting only before a command that does not depend on the one before it: a service's
// real servers stay in the chunk that adds or edits the service, so chunks can be staged
// several at a time. Only a run longer than max (a service with more real servers than
// max) is cut inside; its chunks must then be staged in order.
func SplitForStaging(cmds []Command, max int) [][]Command {
	var chunks [][]Command
	start, cut := 0, 0 // cut: the last place the chunk may end
	for i, c := range cmds {
		if i > start && !followsService(c, cmds[i-1]) {
			cut = i
		}
		if i-start == max {
			if cut <= start {
				cut = i
			}
			chunks = append(chunks, cmds[start:cut])
			start = cut
		}
	}
	if start < len(cmds) {
		chunks = append(chunks, cmds[start:])
	}
	return chunks
}

// followsService reports whether c is a real-server command of the service prev is
// about (the service itself, or another of its real servers).
func followsService(c, prev Command) bool {
	name := realServerService(c)
	if name == "" {
		return false
	}
	switch p := prev.(type) {
	case AddService:
		return p.Service.Name == name
	case EditService:
		return p.Service.Name == name
	}
	return realServerService(prev) == name
}

func realServerService(c Command) string {
	switch c := c.(type) {
	case AddRealServer:
		return c.RealServer.Service
	case EditRealServer:
		return c.RealServer.Service
	case RemoveRealServer:
		return c.Key.Service
	}
	return ""
}
