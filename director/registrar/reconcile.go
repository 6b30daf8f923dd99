package registrar

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/raftlvs/raftlvs/cluster/gossip"
	"github.com/raftlvs/raftlvs/fsm"
)

// phase is what the registrar makes of one agent in one pass.
type phase int

const (
	phaseActive  phase = iota // alive: its real servers are what it announces
	phaseLeaving              // left gracefully or announces Draining: drain, then remove
	phaseFailed               // failed, or absent from the pool: out of rotation, then reaped
	phaseHold                 // intent unknown (unreadable meta, or absent during the start-up grace): leave as is
)

// change is one write and why.
type change struct {
	cmd    fsm.Command
	key    fsm.RSKey
	reason string
}

// snapshot is what one pass reads from the replicated state.
type snapshot struct {
	services map[string]fsm.Service
	servers  map[fsm.RSKey]fsm.RealServer
	owned    map[string][]fsm.RealServer // agent id → its real servers
}

// Reconcile runs one pass: it compares the pool with the state and writes the difference.
// Writes the state refuses (a key an operator owns, a port a DR service cannot take) are
// logged once and skipped; other write errors are returned after the pass tried the rest.
func (r *Registrar) Reconcile(ctx context.Context) error {
	now := r.cfg.Now()
	if r.started.IsZero() {
		r.started = now
	}
	members := map[string]gossip.Member{}
	for _, m := range r.cfg.Members.Members() {
		switch {
		case m.MetaErr != nil:
			members[m.Name] = m // gossip.Pool names members by their id
		case m.Meta.Role == gossip.RoleAgent:
			if r.cfg.Admit != nil {
				if err := r.cfg.Admit(m.Meta.ID, m.Meta.Addr); err != nil {
					r.warnOnce("admit "+m.Meta.ID+" "+m.Meta.Addr.String(), "agent's gossip metadata refused: its real servers are not registered", "agent", m.Meta.ID, "addr", m.Meta.Addr, "err", err)
					continue
				}
			}
			members[m.Meta.ID] = m
		}
	}
	snap := r.read(members)
	ids := slices.Sorted(maps.Keys(snap.owned))
	for id := range members {
		if _, ok := snap.owned[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)

	var changes []change
	failing := map[string]bool{}
	draining := map[fsm.RSKey]bool{}
	for _, id := range ids {
		m, inPool := members[id]
		switch r.phase(m, inPool, now) {
		case phaseActive:
			changes = append(changes, r.register(id, m.Meta, snap)...)
		case phaseLeaving:
			changes = append(changes, r.drain(snap.owned[id], now, draining)...)
		case phaseFailed:
			failing[id] = true
			changes = append(changes, r.retire(id, snap.owned[id], now)...)
		}
	}
	// Timers of agents that are no longer failing or leaving stop: an agent back before
	// its reap keeps its real servers, and a later failure starts a fresh delay.
	maps.DeleteFunc(r.failedSince, func(id string, _ time.Time) bool { return !failing[id] })
	maps.DeleteFunc(r.drainSince, func(k fsm.RSKey, _ time.Time) bool { return !draining[k] })
	return r.write(ctx, changes)
}

// read copies from the state what this pass can use: the services members announce, and
// the real servers agents own or a member could claim (its address in those services).
// A copy of the whole table per pass was most of a leader's work after a 110,000-rule
// restore; agents' real servers are a sliver of it.
func (r *Registrar) read(members map[string]gossip.Member) snapshot {
	snap := snapshot{
		services: map[string]fsm.Service{},
		servers:  map[fsm.RSKey]fsm.RealServer{},
		owned:    map[string][]fsm.RealServer{},
	}
	addrs := map[string][]netip.Addr{} // service → the members' addresses announcing it
	for _, m := range members {
		for _, sp := range m.Meta.Services {
			addrs[sp.Service] = append(addrs[sp.Service], m.Meta.Addr.Unmap()) // as the state keys it
		}
	}
	r.cfg.State.View(func(s *fsm.State) {
		for name := range addrs {
			if svc, ok := s.Service(name); ok {
				snap.services[name] = svc
			}
		}
		s.Walk(func(svc *fsm.Service, servers []*fsm.RealServer) {
			claimable := addrs[svc.Name]
			for _, rs := range servers {
				id, agent := agentID(rs.Origin)
				if !agent && !slices.Contains(claimable, rs.Addr) {
					continue
				}
				snap.servers[rs.Key()] = *rs
				if agent {
					snap.owned[id] = append(snap.owned[id], *rs)
				}
			}
		})
	})
	for _, owned := range snap.owned { // Walk has no order; the writes do
		slices.SortFunc(owned, func(a, b fsm.RealServer) int { return compareKeys(a.Key(), b.Key()) })
	}
	return snap
}

// agentID returns the agent of an agent-registered origin; operator real servers have none.
func agentID(origin string) (string, bool) {
	if origin == fsm.OriginOperator {
		return "", false
	}
	return strings.CutPrefix(origin, fsm.AgentOrigin(""))
}

func (r *Registrar) phase(m gossip.Member, inPool bool, now time.Time) phase {
	switch {
	case !inPool && now.Sub(r.started) < r.cfg.StartupGrace:
		return phaseHold
	case !inPool, m.State == gossip.StateDead:
		return phaseFailed
	case m.State == gossip.StateLeft:
		return phaseLeaving
	case m.MetaErr != nil:
		r.warnOnce("meta/"+m.Name, "agent announces metadata this director cannot read; its real servers are left as they are", "agent", m.Name, "err", m.MetaErr)
		return phaseHold
	case m.Meta.Draining:
		return phaseLeaving
	}
	return phaseActive
}

// register makes an alive agent's real servers what it announces: active, at its weights,
// and nothing else. Health, thresholds and forwarding already in the state are kept.
func (r *Registrar) register(id string, meta gossip.Meta, snap snapshot) []change {
	origin := fsm.AgentOrigin(id)
	want := map[fsm.RSKey]fsm.RealServer{}
	for _, sp := range meta.Services {
		svc, ok := snap.services[sp.Service]
		if !ok {
			r.warnOnce("service/"+id+"/"+sp.Service, "agent serves a service that does not exist; skipped", "agent", id, "service", sp.Service)
			continue
		}
		rs := fsm.RealServer{Service: sp.Service, Addr: meta.Addr, Port: sp.Port, Origin: origin}
		fsm.NormalizeRealServer(&rs, &svc)
		if old, ok := snap.servers[rs.Key()]; ok {
			if old.Origin != origin {
				r.warnOnce(fmt.Sprintf("taken/%s/%v", id, rs.Key()), "agent announces a real server that belongs to someone else; skipped",
					"agent", id, "service", rs.Service, "addr", rs.Addr, "port", rs.Port, "owner", old.Origin)
				continue
			}
			rs = old
		}
		rs.Weight, rs.Admin = sp.Weight, fsm.Active
		want[rs.Key()] = rs
	}
	var changes []change
	for _, k := range slices.SortedFunc(maps.Keys(want), compareKeys) {
		if old, ok := snap.servers[k]; !ok || old != want[k] {
			changes = append(changes, change{fsm.UpsertAgentRS{RealServer: want[k]}, k, "agent announces it"})
		}
	}
	for _, rs := range snap.owned[id] {
		if _, ok := want[rs.Key()]; !ok {
			changes = append(changes, change{fsm.RemoveRealServer{Key: rs.Key()}, rs.Key(), "agent no longer serves it"})
		}
	}
	return changes
}

// drain takes a leaving agent's real servers out of rotation (weight kept: the director
// programs weight 0) and removes each once its connections have ended or MaxDrain passed.
// Connections are counted only MinDrain after the drain was written, when every director
// has applied it and programmed weight 0: counted earlier, a connection the kernel was
// still scheduling there could be cut.
func (r *Registrar) drain(owned []fsm.RealServer, now time.Time, draining map[fsm.RSKey]bool) []change {
	var changes []change
	for _, rs := range owned {
		k := rs.Key()
		draining[k] = true
		since, ok := r.drainSince[k]
		if !ok {
			since = now
			r.drainSince[k] = now
		}
		switch {
		case rs.Admin != fsm.Draining:
			rs.Admin = fsm.Draining
			changes = append(changes, change{fsm.UpsertAgentRS{RealServer: rs}, k, "agent is leaving: drain"})
		case now.Sub(since) >= r.cfg.MaxDrain:
			changes = append(changes, change{fsm.RemoveRealServer{Key: k}, k, "drain time is over"})
		case now.Sub(since) >= r.cfg.MinDrain && r.connectionsEnded(rs):
			changes = append(changes, change{fsm.RemoveRealServer{Key: k}, k, "drained: no connections left"})
		}
	}
	return changes
}

func (r *Registrar) connectionsEnded(rs fsm.RealServer) bool {
	if r.cfg.Conns == nil {
		return false
	}
	n, err := r.cfg.Conns.Connections(rs)
	if err != nil {
		r.log.Debug("cannot count connections; waiting for the drain time", "service", rs.Service, "addr", rs.Addr, "port", rs.Port, "err", err)
		return false
	}
	return n == 0
}

// retire takes a failed agent's real servers out of rotation at once and removes them
// after ReapDelay.
func (r *Registrar) retire(id string, owned []fsm.RealServer, now time.Time) []change {
	since, ok := r.failedSince[id]
	if !ok {
		since = now
		r.failedSince[id] = now
	}
	var changes []change
	for _, rs := range owned {
		switch {
		case now.Sub(since) >= r.cfg.ReapDelay:
			changes = append(changes, change{fsm.RemoveRealServer{Key: rs.Key()}, rs.Key(), "agent failed: reap delay is over"})
		case rs.Admin != fsm.Draining:
			rs.Admin = fsm.Draining
			changes = append(changes, change{fsm.UpsertAgentRS{RealServer: rs}, rs.Key(), "agent failed or is gone: out of rotation until the reap"})
		}
	}
	return changes
}

// write applies the changes one by one, so that one refused write does not hold back
// the others.
func (r *Registrar) write(ctx context.Context, changes []change) error {
	var errs []error
	for _, c := range changes {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := c.key
		attrs := []any{"service", k.Service, "addr", k.Addr, "port", k.Port, "reason", c.reason}
		err := r.cfg.Writer.Apply(ctx, c.cmd)
		switch {
		case err == nil:
			delete(r.writeFailed, k)
			r.cfg.Counters.count(c.cmd)
			r.log.Info(describe(c.cmd), attrs...)
		case refused(err):
			if _, logged := r.writeFailed[k]; !logged {
				r.log.Warn("the state refuses a real-server write; skipped until the agent or the service changes", append(attrs, "err", err)...)
			}
			r.writeFailed[k] = err
		default:
			errs = append(errs, fmt.Errorf("%s %s %s:%d: %w", describe(c.cmd), k.Service, k.Addr, k.Port, err))
		}
	}
	return errors.Join(errs...)
}

// refused reports whether the state rejected a write, which retrying cannot change.
func refused(err error) bool {
	return errors.Is(err, fsm.ErrInvalid) || errors.Is(err, fsm.ErrConflict) ||
		errors.Is(err, fsm.ErrNotFound) || errors.Is(err, fsm.ErrExists)
}

func describe(c fsm.Command) string {
	switch c := c.(type) {
	case fsm.UpsertAgentRS:
		if c.RealServer.Admin == fsm.Draining {
			return "drain agent real server"
		}
		return "register agent real server"
	case fsm.RemoveRealServer:
		return "remove agent real server"
	}
	return fmt.Sprintf("%T", c)
}

func (r *Registrar) warnOnce(key, msg string, args ...any) {
	if r.warned[key] {
		return
	}
	r.warned[key] = true
	r.log.Warn(msg, args...)
}

func compareKeys(a, b fsm.RSKey) int {
	return cmp.Or(cmp.Compare(a.Service, b.Service), a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port))
}
