package fsm

import (
	"fmt"
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

// Execute applies a decoded command, all or nothing.
func (s *State) Execute(c Command) error {
	if b, ok := c.(Batch); ok {
		// Apply to one copy and keep it: a batch (a restore of thousands of services)
		// is then checked and applied in a single pass.
		scratch := s.Clone()
		if err := b.applyTo(scratch); err != nil {
			return err
		}
		*s = *scratch
		s.version++
		return nil
	}
	if err := c.check(s); err != nil {
		return err
	}
	c.mutate(s)
	s.version++
	return nil
}

// Check reports whether c would be accepted by the current state, without applying it.
func (s *State) Check(c Command) error { return c.check(s) }

// Prepare normalizes a command from an operator or agent against the current state
// (defaults filled in, the origin of an edited real server kept) and validates it. The
// leader logs only prepared commands.
func (s *State) Prepare(c Command) (Command, error) {
	var err error
	c, err = s.normalize(c)
	if err != nil {
		return nil, err
	}
	if err := checkUsableAddresses(c); err != nil {
		return nil, err
	}
	if err := checkHealthSpecs(c); err != nil {
		return nil, err
	}
	if _, ok := c.(Batch); ok {
		return c, nil // normalize applied it to a copy of the state already
	}
	if err := c.check(s); err != nil {
		return nil, err
	}
	return c, nil
}

func (s *State) normalize(c Command) (Command, error) {
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
		s.normalizeNewRealServer(&c.RealServer)
		return c, nil
	case UpsertAgentRS:
		if old, ok := s.server(c.RealServer.Key()); ok && c.RealServer.Health == "" {
			// A registration refresh is no health verdict: keep the checks' last word.
			c.RealServer.Health, c.RealServer.HealthReason, c.RealServer.HealthSince = old.Health, old.HealthReason, old.HealthSince
		}
		s.normalizeNewRealServer(&c.RealServer)
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
		defaultPort(&c.RealServer, s.services[c.RealServer.Service])
		if old, ok := s.server(c.RealServer.Key()); ok {
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
		NormalizeRealServer(&c.RealServer, s.services[c.RealServer.Service])
		return c, nil
	case Batch:
		// Each command is normalized against the state the earlier ones leave behind.
		scratch := s.Clone()
		out := Batch{Commands: make([]Command, len(c.Commands))}
		for i, sub := range c.Commands {
			n, err := scratch.normalize(sub)
			if err != nil {
				return nil, fmt.Errorf("command %d: %w", i+1, err)
			}
			if err := scratch.Execute(n); err != nil {
				return nil, fmt.Errorf("command %d: %w", i+1, err)
			}
			out.Commands[i] = n
		}
		return out, nil
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

func (c AddService) mutate(s *State) { putService(s, c.Service.Clone()) }

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

func (c EditService) mutate(s *State) { putService(s, c.Service.Clone()) }

func (c RemoveService) check(s *State) error {
	if _, ok := s.services[c.Name]; !ok {
		return notFound("name", "no service %s", c.Name)
	}
	return nil
}

func (c RemoveService) mutate(s *State) {
	deleteService(s, c.Name)
	delete(s.servers, c.Name)
}

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

func (c AddRealServer) mutate(s *State) { putServer(s, c.RealServer) }

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

func (c EditRealServer) mutate(s *State) { putServer(s, c.RealServer) }

func (c RemoveRealServer) check(s *State) error {
	if _, ok := s.server(c.Key); !ok {
		return notFound("addr", "no real server %s port %d in service %s", c.Key.Addr, c.Key.Port, c.Key.Service)
	}
	return nil
}

func (c RemoveRealServer) mutate(s *State) { deleteServer(s, c.Key) }

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

func (c SetHealth) mutate(s *State) {
	rs := s.servers[c.Key.Service][c.Key]
	rs.Health, rs.HealthReason, rs.HealthSince = c.Health, c.Reason, c.Since
	updateQuorum(s, c.Key.Service)
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

func (c SetClusterID) mutate(s *State) { s.clusterID = c.ID }

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

func (c UpsertAgentRS) mutate(s *State) { putServer(s, c.RealServer) }

func (c Batch) check(s *State) error { return c.applyTo(s.Clone()) }

// mutate applies a batch that check accepted (State.Execute uses applyTo directly).
func (c Batch) mutate(s *State) {
	for _, sub := range c.Commands {
		sub.mutate(s)
	}
}

// applyTo checks and applies each command in turn; on an error s is half changed, so it
// must be a scratch copy.
func (c Batch) applyTo(s *State) error {
	for i, sub := range c.Commands {
		if err := sub.check(s); err != nil {
			return fmt.Errorf("command %d: %w", i+1, err)
		}
		sub.mutate(s)
	}
	return nil
}

// normalizeNewRealServer fills in a real server's defaults, canonicalises its own check and
// keeps it out of rotation until its first successful check when the check that applies
// says so (keepalived's alpha).
func (s *State) normalizeNewRealServer(rs *RealServer) {
	svc := s.services[rs.Service]
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
		for i, sub := range c.Commands {
			if err := checkHealthSpecs(sub); err != nil {
				return fmt.Errorf("command %d: %w", i+1, err)
			}
		}
	}
	return nil
}
