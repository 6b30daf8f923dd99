package fsm

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Limits on what the state accepts.
const (
	MaxNameLen     = 64
	MaxWeight      = 65535 // the kernel takes more, but moby/ipvs reads weights back as 16 bits
	MaxThreshold   = 65535 // as ipvsadm
	MaxFWMark      = 1<<32 - 1
	MaxPersistence = 1<<31 - 1 // the kernel rejects 2^32-1 (keepalived #1641)
)

// NormalizeService fills in defaults so that equal intents give equal services.
func NormalizeService(s *Service) {
	if s.Family == "" && s.VIP.IsValid() {
		s.Family = FamilyOf(s.VIP)
	}
	if s.Family == "" {
		s.Family = IPv4
	}
	s.VIP = s.VIP.Unmap()
	if s.Scheduler == "" {
		s.Scheduler = DefaultScheduler
	}
	if s.Forwarding == "" {
		s.Forwarding = DefaultForwarding
	}
	if s.PersistMask == 0 {
		s.PersistMask = s.Family.Bits()
	}
	s.SchedFlags = canonicalFlags(s.Scheduler, s.SchedFlags)
	if s.Name == "" {
		s.Name = DefaultServiceName(s)
	}
	if s.OnDown == "" {
		s.OnDown = DefaultDownAction
	}
	s.HealthCheck = s.HealthCheck.Clone() // the caller's spec stays as it was
	normalizeCheck(s.HealthCheck)
}

// DefaultServiceName names a service after what it matches: "tcp-192.0.2.10-80", "fwm-100",
// "fwm6-200".
func DefaultServiceName(s *Service) string {
	if s.FWMark != 0 {
		if s.Family == IPv6 {
			return fmt.Sprintf("fwm6-%d", s.FWMark)
		}
		return fmt.Sprintf("fwm-%d", s.FWMark)
	}
	return fmt.Sprintf("%s-%s-%d", s.Protocol, s.VIP, s.Port)
}

// ValidateService checks a normalized service on its own (not against other services).
func ValidateService(s *Service) error {
	if err := validateName("name", s.Name); err != nil {
		return err
	}
	if s.Family != IPv4 && s.Family != IPv6 {
		return invalid("family", "must be ipv4 or ipv6, not %q", s.Family)
	}
	if s.FWMark != 0 {
		if s.VIP.IsValid() || s.Protocol != "" || s.Port != 0 {
			return invalid("fwmark", "a fwmark service has no vip, protocol or port")
		}
	} else {
		switch s.Protocol {
		case TCP, UDP, SCTP:
		case "":
			return invalid("protocol", "required (tcp, udp or sctp) unless fwmark is set")
		default:
			return invalid("protocol", "must be tcp, udp or sctp, not %q", s.Protocol)
		}
		if err := validateUnicast("vip", s.VIP); err != nil {
			return err
		}
		if FamilyOf(s.VIP) != s.Family {
			return invalid("family", "%s does not match vip %s", s.Family, s.VIP)
		}
		if s.Port == 0 && s.Persistence == 0 {
			return invalid("port", "port 0 (all ports) needs persistence")
		}
	}
	if !slices.Contains(Schedulers, s.Scheduler) {
		return invalid("scheduler", "unknown scheduler %q (one of %s)", s.Scheduler, strings.Join(Schedulers, " "))
	}
	for _, f := range s.SchedFlags {
		if err := checkSchedFlag(s.Scheduler, f); err != nil {
			return err
		}
	}
	if s.Persistence > MaxPersistence {
		return invalid("persistence", "%d s is above the kernel's limit %d", s.Persistence, MaxPersistence)
	}
	if s.PersistMask < 1 || s.PersistMask > s.Family.Bits() {
		return invalid("persist_mask", "prefix length %d is out of range 1..%d", s.PersistMask, s.Family.Bits())
	}
	if s.PersistEngine != "" && s.PersistEngine != "sip" {
		return invalid("persist_engine", "only \"sip\" is supported, not %q", s.PersistEngine)
	}
	if s.PersistEngine != "" && s.Persistence == 0 {
		return invalid("persist_engine", "a persistence engine needs persistence")
	}
	if s.OnePacket && (s.Protocol == TCP || s.Protocol == SCTP) {
		return invalid("one_packet", "one-packet scheduling applies to udp only")
	}
	if err := validateForwarding("forwarding", s.Forwarding, false); err != nil {
		return err
	}
	if err := checkFieldsLegacy("health_check", s.HealthCheck); err != nil {
		return err
	}
	switch s.OnDown {
	case "", DownRemove, DownInhibit:
	default:
		return invalid("on_down", "must be remove or inhibit, not %q", s.OnDown)
	}
	if s.FailOpenPercent < 0 || s.FailOpenPercent > 100 {
		return invalid("fail_open_percent", "%d is out of range 0..100", s.FailOpenPercent)
	}
	if s.Quorum < 0 {
		return invalid("quorum", "must not be negative")
	}
	if s.Hysteresis < 0 || (s.Hysteresis > 0 && s.Hysteresis >= s.Quorum) {
		return invalid("hysteresis", "must be at least 0 and below the quorum")
	}
	if s.SorryServer.IsValid() {
		if err := validateUnicast("sorry_server", s.SorryServer.Addr()); err != nil {
			return err
		}
		if FamilyOf(s.SorryServer.Addr()) != s.Family {
			return invalid("sorry_server", "%s is not %s", s.SorryServer.Addr(), s.Family)
		}
	}
	return nil
}

// NormalizeRealServer fills in defaults. The port of a DR or TUN real server is the
// service's port (the kernel ignores it), and a NAT real server without a port uses it too.
func NormalizeRealServer(r *RealServer, svc *Service) {
	r.Addr = r.Addr.Unmap()
	if r.Origin == "" {
		r.Origin = OriginOperator
	}
	if r.Admin == "" {
		r.Admin = Active
	}
	if r.Health == "" {
		r.Health = HealthUnknown
	}
	defaultPort(r, svc)
}

// defaultPort gives a real server without a port the service's port.
func defaultPort(r *RealServer, svc *Service) {
	if svc != nil && r.Port == 0 && !svc.IsFWMark() {
		r.Port = svc.Port
	}
}

// ValidateRealServer checks a normalized real server against its service.
func ValidateRealServer(r *RealServer, svc *Service) error {
	if err := validateUnicast("addr", r.Addr); err != nil {
		return err
	}
	if FamilyOf(r.Addr) != svc.Family {
		return invalid("addr", "%s is %s but service %s is %s", r.Addr, FamilyOf(r.Addr), svc.Name, svc.Family)
	}
	if r.Weight < 0 || r.Weight > MaxWeight {
		return invalid("weight", "%d is out of range 0..%d", r.Weight, MaxWeight)
	}
	if r.UpperThreshold > MaxThreshold || r.LowerThreshold > MaxThreshold {
		return invalid("upper_threshold", "thresholds are 0..%d", MaxThreshold)
	}
	if r.UpperThreshold != 0 && r.LowerThreshold > r.UpperThreshold {
		return invalid("lower_threshold", "%d is above the upper threshold %d", r.LowerThreshold, r.UpperThreshold)
	}
	if err := validateForwarding("forwarding", r.Forwarding, true); err != nil {
		return err
	}
	if err := checkFieldsLegacy("health_check", r.HealthCheck); err != nil {
		return err
	}
	if m := r.Method(svc); (m == DR || m == TUN) && !svc.IsFWMark() && svc.Port != 0 && r.Port != svc.Port {
		return invalid("port", "%s real servers receive the service port %d, not %d", m, svc.Port, r.Port)
	}
	if r.Origin != OriginOperator && !strings.HasPrefix(r.Origin, "agent:") {
		return invalid("origin", "must be %q or agent:ID, not %q", OriginOperator, r.Origin)
	}
	switch r.Admin {
	case Active, Draining:
	default:
		return invalid("admin", "must be active or draining, not %q", r.Admin)
	}
	switch r.Health {
	case HealthUnknown, HealthUp, HealthDown:
	default:
		return invalid("health", "must be unknown, up or down, not %q", r.Health)
	}
	return nil
}

func validateForwarding(field string, f Forwarding, emptyOK bool) error {
	switch f {
	case NAT, DR, TUN:
		return nil
	case "":
		if emptyOK {
			return nil
		}
	}
	return invalid(field, "must be nat, dr or tun, not %q", f)
}

func validateUnicast(field string, a netip.Addr) error {
	switch {
	case !a.IsValid():
		return invalid(field, "an IP address is required")
	case a.IsUnspecified():
		return invalid(field, "%s is not a usable address", a)
	case a.IsMulticast():
		return invalid(field, "%s is a multicast address", a)
	}
	return nil
}

// ValidateName checks a service, cluster, director or agent name: 1..64 letters, digits
// and - _ . : starting with a letter or digit.
func ValidateName(name string) error { return validateName("name", name) }

func validateName(field, name string) error {
	if name == "" || len(name) > MaxNameLen {
		return invalid(field, "must be 1..%d characters", MaxNameLen)
	}
	for i, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			i > 0 && (c == '-' || c == '_' || c == '.' || c == ':')
		if !ok {
			return invalid(field, "%q: use letters, digits and - _ . : (starting with a letter or digit)", name)
		}
	}
	return nil
}

func checkSchedFlag(scheduler, f string) error {
	switch {
	case schedFlagBit(f) == 0:
		return invalid("sched_flags", "unknown flag %q", f)
	case strings.HasPrefix(f, "sh-") && scheduler != "sh":
		return invalid("sched_flags", "%s needs scheduler sh, not %s", f, scheduler)
	case strings.HasPrefix(f, "mh-") && scheduler != "mh":
		return invalid("sched_flags", "%s needs scheduler mh, not %s", f, scheduler)
	}
	return nil
}

// canonicalFlags rewrites valid flags to the names ipvsadm prints for the scheduler, once
// each, in bit order. Invalid flags are left alone for validation to report.
func canonicalFlags(scheduler string, flags []string) []string {
	if len(flags) == 0 {
		return nil
	}
	var bits uint32
	for _, f := range flags {
		if checkSchedFlag(scheduler, f) != nil {
			return flags
		}
		bits |= schedFlagBit(f)
	}
	return SchedFlagNames(scheduler, bits)
}
