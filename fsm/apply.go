package fsm

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
)

// Apply decodes a log entry and applies it. A command that does not fit the current state
// (a real server for a service removed meanwhile, say) is rejected with an error and changes
// nothing; every node rejects it the same way. An error wrapping ErrUnknownCommand means
// this node cannot read the log and must stop.
func (s *State) Apply(entry []byte) error {
	c, err := Decode(entry)
	if err != nil {
		return err
	}
	return s.Execute(c)
}

// Execute applies a decoded command, all or nothing: a batch that fails at its 9,000th
// command is undone, in place, to exactly the state before it (undo.go). What an accepted
// command touched goes to the journal (ChangesSince).
func (s *State) Execute(c Command) error {
	if err := s.run(c); err != nil {
		s.rollback(0)
		return err
	}
	s.version++
	s.commit()
	return nil
}

// runner is a command made of commands (a batch, a staged commit): it checks and applies
// each in turn, in one pass, so checking it is trying it and undoing it.
type runner interface {
	run(s *State) error
}

// run checks and applies c, recording what it replaces; on an error the caller undoes it.
func (s *State) run(c Command) error {
	if r, ok := c.(runner); ok {
		return r.run(s)
	}
	if err := c.check(s); err != nil {
		return err
	}
	c.mutate(s)
	return nil
}

// try runs c and undoes it, whatever the outcome.
func (s *State) try(c runner) error {
	mark := len(s.undo)
	err := c.run(s)
	s.rollback(mark)
	return err
}

// NeedsExclusive reports whether Prepare or Check of c changes the state for a moment: a
// batch (or a staged commit) is tried on the state itself and undone, without a copy, so
// the caller must hold the state exclusively (as for Apply), not share it with readers.
func NeedsExclusive(c Command) bool {
	_, ok := c.(runner)
	return ok
}

// Check reports whether c would be accepted by the current state, without applying it
// (see NeedsExclusive).
func (s *State) Check(c Command) error { return c.check(s) }

// Prepare normalizes a command from an operator or agent against the current state
// (defaults filled in, the origin of an edited real server kept) and validates it. The
// leader logs only prepared commands. See NeedsExclusive.
func (s *State) Prepare(c Command) (Command, error) {
	switch c := c.(type) {
	case Batch:
		// Each command is normalized against the state the earlier ones leave behind:
		// the batch is applied as it goes, then undone.
		mark := len(s.undo)
		p, err := s.normalizeBatch(c)
		s.rollback(mark)
		if err != nil {
			return nil, err
		}
		return p, checkStatic(p)
	case StageChunk:
		return s.prepareStage(c)
	case CommitStaged:
		// Validated when applied, on every node alike (a failed commit changes nothing):
		// trying 110,000 commands here as well would only double the cost.
		_, err := c.complete(s)
		return c, err
	}
	p, err := normalize(s, c)
	if err != nil {
		return nil, err
	}
	if err := checkStatic(p); err != nil {
		return nil, err
	}
	if err := p.check(s); err != nil {
		return nil, err
	}
	return p, nil
}

// DryRun reports whether c would be accepted and applied now, and changes nothing:
// Prepare, and for a staged commit (which Prepare leaves to Apply) the whole of it tried
// and undone. See NeedsExclusive.
func (s *State) DryRun(c Command) error {
	p, err := s.Prepare(c)
	if err != nil {
		return err
	}
	if commit, ok := p.(CommitStaged); ok {
		return commit.check(s)
	}
	return nil
}

// normalizeBatch normalizes and applies each command of b in turn; the caller undoes them.
func (s *State) normalizeBatch(b Batch) (Batch, error) {
	out := Batch{Commands: make([]Command, len(b.Commands))}
	for i, sub := range b.Commands {
		var n Command
		err := batchable(sub)
		switch nested, ok := sub.(Batch); {
		case err != nil:
		case ok:
			n, err = s.normalizeBatch(nested)
		default:
			if n, err = normalize(s, sub); err == nil {
				err = s.run(n)
			}
		}
		if err != nil {
			return Batch{}, fmt.Errorf("command %d: %w", i+1, err)
		}
		out.Commands[i] = n
	}
	return out, nil
}

// checkStatic runs the checks of Prepare that do not depend on the state.
func checkStatic(c Command) error {
	if err := checkUsableAddresses(c); err != nil {
		return err
	}
	return checkHealthSpecs(c)
}

// lookup is what normalizing a command reads: the state, or the state as a staged
// transaction will leave it (stageView).
type lookup interface {
	service(name string) *Service
	server(k RSKey) (*RealServer, bool)
	directorAt(a netip.Addr) (string, bool)
}

func (s *State) service(name string) *Service { return s.services[name] }

// directorAt names the director whose Raft, API or gossip address is a, if any.
func (s *State) directorAt(a netip.Addr) (string, bool) {
	for _, id := range slices.Sorted(maps.Keys(s.directors)) {
		d := s.directors[id]
		for _, hp := range []string{d.RaftAddr, d.APIAddr, d.GossipAddr} {
			if ap, err := netip.ParseAddrPort(hp); err == nil && ap.Addr().Unmap() == a.Unmap() {
				return id, true
			}
		}
	}
	return "", false
}

// normalize fills in the defaults of one command (not a batch) against v.
func normalize(v lookup, c Command) (Command, error) {
	switch c := c.(type) {
	case AddService:
		c.Service = *c.Service.Clone()
		NormalizeService(&c.Service)
		return c, nil
	case EditService:
		c.Service = *c.Service.Clone()
		NormalizeService(&c.Service)
		return c, nil
	case AddRealServer:
		normalizeNewRealServer(v, &c.RealServer)
		return c, nil
	case UpsertAgentRS:
		if old, ok := v.server(c.RealServer.Key()); ok && c.RealServer.Health == "" {
			// A registration refresh is no health verdict: keep the checks' last word.
			c.RealServer.Health, c.RealServer.HealthReason, c.RealServer.HealthSince = old.Health, old.HealthReason, old.HealthSince
		}
		normalizeNewRealServer(v, &c.RealServer)
		return c, nil
	case AddVIP:
		// A VIP on a director's own address would be taken off that director when
		// another leads (a node addressed by a /32 has nothing else to tell them apart).
		if id, ok := v.directorAt(c.VIP.Addr()); ok {
			return nil, conflict("prefix", "%s is director %s's own address, not one to move between directors", c.VIP.Addr(), id)
		}
		return c, nil
	case SetHealth:
		c.Since = c.Since.UTC().Round(0)
		return c, nil
	case SetHealths:
		out := SetHealths{Updates: make([]SetHealth, len(c.Updates))}
		for i, u := range c.Updates {
			u.Since = u.Since.UTC().Round(0)
			out.Updates[i] = u
		}
		return out, nil
	case EditRealServer:
		// An edit changes the operator's settings; who registered the server and what
		// the health checks last said are not the editor's to reset.
		svc := v.service(c.RealServer.Service)
		defaultPort(&c.RealServer, svc)
		if old, ok := v.server(c.RealServer.Key()); ok {
			// The registrar would undo an edit within seconds: say so instead.
			if old.IsAgent() && c.RealServer.Origin == "" {
				return nil, conflict("addr", "real server %s port %d of %s is registered by %s: change it on the agent (its --service weight), or stop the agent to drain it",
					old.Addr, old.Port, old.Service, old.Origin)
			}
			if c.RealServer.Origin == "" {
				c.RealServer.Origin = old.Origin
			}
			if c.RealServer.Health == "" {
				c.RealServer.Health, c.RealServer.HealthReason, c.RealServer.HealthSince = old.Health, old.HealthReason, old.HealthSince
			}
		}
		c.RealServer.HealthCheck = c.RealServer.HealthCheck.Clone()
		normalizeCheck(c.RealServer.HealthCheck)
		NormalizeRealServer(&c.RealServer, svc)
		return c, nil
	}
	return c, nil
}

func (c AddService) check(s *State) error {
	svc := &c.Service
	if err := ValidateService(svc); err != nil {
		return err
	}
	if _, ok := s.services[svc.Name]; ok {
		return exists("name", "service %s already exists", svc.Name)
	}
	if other, ok := s.FindService(svc); ok {
		return conflict("vip", "service %s already matches the same packets", other.Name)
	}
	return nil
}

func (c AddService) mutate(s *State) { s.setService(c.Service.Clone()) }

func (c EditService) check(s *State) error {
	svc := &c.Service
	if _, ok := s.services[svc.Name]; !ok {
		return notFound("name", "no service %s", svc.Name)
	}
	if err := ValidateService(svc); err != nil {
		return err
	}
	if other, ok := s.FindService(svc); ok && other.Name != svc.Name {
		return conflict("vip", "service %s already matches the same packets", other.Name)
	}
	for _, rs := range s.servers[svc.Name] {
		if err := ValidateRealServer(rs, svc); err != nil {
			return conflict("service", "real server %s:%d would no longer fit: %v", rs.Addr, rs.Port, err)
		}
	}
	return nil
}

func (c EditService) mutate(s *State) { s.setService(c.Service.Clone()) }

func (c RemoveService) check(s *State) error {
	if _, ok := s.services[c.Name]; !ok {
		return notFound("name", "no service %s", c.Name)
	}
	return nil
}

func (c RemoveService) mutate(s *State) { s.dropService(c.Name) }

func checkRealServer(s *State, rs *RealServer) error {
	svc, ok := s.services[rs.Service]
	if !ok {
		return notFound("service", "no service %s", rs.Service)
	}
	return ValidateRealServer(rs, svc)
}

func (c AddRealServer) check(s *State) error {
	if err := checkRealServer(s, &c.RealServer); err != nil {
		return err
	}
	if _, ok := s.server(c.RealServer.Key()); ok {
		return exists("addr", "real server %s port %d is already in service %s", c.RealServer.Addr, c.RealServer.Port, c.RealServer.Service)
	}
	return nil
}

func (c AddRealServer) mutate(s *State) { s.setServer(&c.RealServer) }

func (c EditRealServer) check(s *State) error {
	old, ok := s.server(c.RealServer.Key())
	if !ok {
		return notFound("addr", "no real server %s port %d in service %s", c.RealServer.Addr, c.RealServer.Port, c.RealServer.Service)
	}
	if err := checkRealServer(s, &c.RealServer); err != nil {
		return err
	}
	if old.Origin != c.RealServer.Origin {
		return conflict("origin", "real server belongs to %s", old.Origin)
	}
	return nil
}

func (c EditRealServer) mutate(s *State) { s.setServer(&c.RealServer) }

func (c RemoveRealServer) check(s *State) error {
	if _, ok := s.server(c.Key); !ok {
		return notFound("addr", "no real server %s port %d in service %s", c.Key.Addr, c.Key.Port, c.Key.Service)
	}
	return nil
}

func (c RemoveRealServer) mutate(s *State) { s.dropServer(c.Key) }

func (c SetHealth) check(s *State) error {
	if _, ok := s.server(c.Key); !ok {
		return notFound("addr", "no real server %s port %d in service %s", c.Key.Addr, c.Key.Port, c.Key.Service)
	}
	return c.checkValue("health")
}

func (c SetHealth) checkValue(field string) error {
	switch c.Health {
	case HealthUnknown, HealthUp, HealthDown:
	default:
		return invalid(field, "must be unknown, up or down, not %q", c.Health)
	}
	if len(c.Reason) > MaxCheckText {
		return invalid(field+"_reason", "longer than %d bytes", MaxCheckText)
	}
	return nil
}

// mutate puts a changed copy in place: the state never changes a real server in place.
func (c SetHealth) mutate(s *State) {
	old := s.servers[c.Key.Service][c.Key]
	if old.Health == c.Health && old.HealthReason == c.Reason && old.HealthSince == c.Since {
		return // the same verdict again: nothing changes, nothing to reprogram
	}
	rs := *old
	rs.Health, rs.HealthReason, rs.HealthSince = c.Health, c.Reason, c.Since
	s.setServer(&rs)
}

// SetHealths checks only its values: a real server removed since the leader decided is
// skipped, so one stale verdict never costs the others theirs.
func (c SetHealths) check(s *State) error {
	if len(c.Updates) == 0 {
		return invalid("updates", "at least one update is required")
	}
	for i, u := range c.Updates {
		if err := u.checkValue(fmt.Sprintf("updates[%d].health", i)); err != nil {
			return err
		}
	}
	return nil
}

func (c SetHealths) mutate(s *State) {
	for _, u := range c.Updates {
		if _, ok := s.server(u.Key); ok {
			u.mutate(s)
		}
	}
}

func (c SetClusterID) check(s *State) error {
	if err := validateName("id", c.ID); err != nil {
		return err
	}
	if s.clusterID != "" && s.clusterID != c.ID {
		return conflict("id", "cluster is already named %s", s.clusterID)
	}
	return nil
}

func (c SetClusterID) mutate(s *State) { s.setClusterID(c.ID) }

func (c UpsertAgentRS) check(s *State) error {
	rs := &c.RealServer
	if !rs.IsAgent() {
		return invalid("origin", "agent registrations need an agent origin")
	}
	if err := checkRealServer(s, rs); err != nil {
		return err
	}
	if old, ok := s.server(rs.Key()); ok && old.Origin != rs.Origin {
		return conflict("addr", "real server %s port %d in %s belongs to %s", rs.Addr, rs.Port, rs.Service, old.Origin)
	}
	return nil
}

func (c UpsertAgentRS) mutate(s *State) { s.setServer(&c.RealServer) }

func (c Batch) check(s *State) error { return s.try(c) }

// mutate applies a batch that check accepted (Execute runs it in one pass instead).
func (c Batch) mutate(s *State) { _ = c.run(s) }

// run checks and applies each command in turn; on an error s is half changed, and the
// caller undoes it.
func (c Batch) run(s *State) error {
	for i, sub := range c.Commands {
		if err := batchable(sub); err != nil {
			return fmt.Errorf("command %d: %w", i+1, err)
		}
		if err := s.run(sub); err != nil {
			return fmt.Errorf("command %d: %w", i+1, err)
		}
	}
	return nil
}

// batchable refuses the staged-transaction commands inside a batch: a transaction is
// staged and committed at the top of the log, one entry each.
func batchable(c Command) error {
	switch c.(type) {
	case StageChunk, CommitStaged, AbortStaged:
		return invalid("commands", "%T cannot be part of a batch", c)
	}
	return nil
}

// normalizeNewRealServer fills in a real server's defaults, canonicalises its own check and
// keeps it out of rotation until its first successful check when the check that applies
// says so (keepalived's alpha).
func normalizeNewRealServer(v lookup, rs *RealServer) {
	svc := v.service(rs.Service)
	rs.HealthCheck = rs.HealthCheck.Clone()
	normalizeCheck(rs.HealthCheck)
	NormalizeRealServer(rs, svc)
	if hc := EffectiveCheck(svc, rs); hc != nil && hc.StartDown && rs.Health == HealthUnknown {
		rs.Health, rs.HealthReason = HealthDown, "not checked yet (start_down)"
	}
}

// checkHealthSpecs validates, in full, every health check a command brings in.
func checkHealthSpecs(c Command) error {
	switch c := c.(type) {
	case AddService:
		return ValidateHealthCheck("health_check", c.Service.HealthCheck)
	case EditService:
		return ValidateHealthCheck("health_check", c.Service.HealthCheck)
	case AddRealServer:
		return ValidateHealthCheck("health_check", c.RealServer.HealthCheck)
	case EditRealServer:
		return ValidateHealthCheck("health_check", c.RealServer.HealthCheck)
	case UpsertAgentRS:
		return ValidateHealthCheck("health_check", c.RealServer.HealthCheck)
	case Batch:
		return eachCommand(c.Commands, checkHealthSpecs)
	case StageChunk:
		return eachCommand(c.Commands, checkHealthSpecs)
	}
	return nil
}

// eachCommand runs check on each command, naming the first that fails.
func eachCommand(cmds []Command, check func(Command) error) error {
	for i, sub := range cmds {
		if err := check(sub); err != nil {
			return fmt.Errorf("command %d: %w", i+1, err)
		}
	}
	return nil
}
