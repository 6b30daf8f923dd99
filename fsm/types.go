// Package fsm holds the replicated state of a raftlvs cluster: virtual services, their real
// servers and a few cluster facts, and the typed commands that change them. It is pure and
// deterministic: no I/O, no clocks, no randomness, so every director that applies the same
// log reaches the same state.
package fsm

import (
	"net/netip"
	"slices"
	"time"
)

// Protocol is the transport protocol of a virtual service. A fwmark service has none.
type Protocol string

const (
	TCP  Protocol = "tcp"
	UDP  Protocol = "udp"
	SCTP Protocol = "sctp"
)

// Family is the address family of a service and of all its real servers.
type Family string

const (
	IPv4 Family = "ipv4"
	IPv6 Family = "ipv6"
)

// Bits is the address length of the family in bits.
func (f Family) Bits() int {
	if f == IPv6 {
		return 128
	}
	return 32
}

// FamilyOf returns the family of an address.
func FamilyOf(a netip.Addr) Family {
	if a.Is4() {
		return IPv4
	}
	return IPv6
}

// Schedulers lists every IPVS scheduler the kernel ships.
var Schedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh", "fo", "ovf", "twos"}

// DefaultScheduler is the scheduler of a service that names none (as ipvsadm and keepalived).
const DefaultScheduler = "wlc"

// Scheduler flags, as ipvsadm names them. The kernel has three bits; sh and mh give the
// first two their own names.
const (
	FlagSHFallback = "sh-fallback"
	FlagSHPort     = "sh-port"
	FlagMHFallback = "mh-fallback"
	FlagMHPort     = "mh-port"
	Flag1          = "flag-1"
	Flag2          = "flag-2"
	Flag3          = "flag-3"
)

// Kernel service flag bits (include/uapi/linux/ip_vs.h).
const (
	SvcFlagPersistent uint32 = 0x01
	SvcFlagHashed     uint32 = 0x02
	SvcFlagOnePacket  uint32 = 0x04
	SvcFlagSched1     uint32 = 0x08
	SvcFlagSched2     uint32 = 0x10
	SvcFlagSched3     uint32 = 0x20
)

// Forwarding is how a director hands packets to a real server.
type Forwarding string

const (
	NAT Forwarding = "nat" // masquerading: the director rewrites the destination
	DR  Forwarding = "dr"  // direct routing: the real server holds the VIP on lo
	TUN Forwarding = "tun" // IPIP tunnelling: the real server holds the VIP on tunl0
)

// DefaultForwarding is the forwarding method of a service that names none (as keepalived).
const DefaultForwarding = NAT

// AdminState is what the operator (or a leaving agent) wants of a real server.
type AdminState string

const (
	Active   AdminState = "active"
	Draining AdminState = "draining" // kept at weight 0: no new connections, existing ones finish
)

// Health is the last verdict of the health checks on a real server.
type Health string

const (
	HealthUnknown Health = "unknown" // not checked (yet): counts as in rotation
	HealthUp      Health = "up"
	HealthDown    Health = "down"
)

// DefaultWeight is the weight of a real server that names none (as ipvsadm).
const DefaultWeight = 1

// OriginOperator marks a real server added by an operator; agents use AgentOrigin(id).
const OriginOperator = "operator"

// AgentOrigin is the origin of a real server registered by the agent with this id.
func AgentOrigin(agentID string) string { return "agent:" + agentID }

// Service is one IPVS virtual service.
type Service struct {
	Name string `json:"name"`
	// Either Protocol+VIP+Port, or FWMark (with Family).
	Protocol Protocol   `json:"protocol,omitempty"`
	VIP      netip.Addr `json:"vip,omitzero"`
	Port     uint16     `json:"port,omitempty"`
	FWMark   uint32     `json:"fwmark,omitempty"`
	Family   Family     `json:"family"`

	Scheduler  string   `json:"scheduler"`
	SchedFlags []string `json:"sched_flags,omitempty"` // canonical names, in bit order

	// Persistence is the persistence timeout in seconds; 0 is off.
	Persistence uint32 `json:"persistence,omitempty"`
	// PersistMask is the persistence granularity as a prefix length (32 or 128: per client).
	PersistMask   int    `json:"persist_mask,omitempty"`
	PersistEngine string `json:"persist_engine,omitempty"` // "" or "sip"
	OnePacket     bool   `json:"one_packet,omitempty"`

	// Forwarding is the default method for real servers that do not override it.
	Forwarding Forwarding `json:"forwarding"`

	// HealthCheck is how its real servers are checked (nil: not checked, always up);
	// OnDown what a real server found down becomes (default remove).
	HealthCheck *HealthCheck `json:"health_check,omitempty"`
	OnDown      DownAction   `json:"on_down,omitempty"`
	// FailOpenPercent, if set, stops the health checks from taking more than this share
	// of the service's real servers out at once: beyond it the last good set is kept
	// (and the leader says so), for a fault that is more likely the checks' than the
	// servers' (Envoy's panic threshold, AWS's fail-open).
	FailOpenPercent int `json:"fail_open_percent,omitempty"`
	// Quorum is the sum of in-rotation weights below which SorryServer takes over; the
	// service comes back above Quorum+Hysteresis and falls below Quorum-Hysteresis.
	Quorum      int            `json:"quorum,omitempty"`
	Hysteresis  int            `json:"hysteresis,omitempty"`
	SorryServer netip.AddrPort `json:"sorry_server,omitzero"`
	// QuorumDown is the state's verdict on the quorum (updateQuorum), never a command's:
	// whatever a command says is replaced.
	QuorumDown bool `json:"quorum_down,omitempty"`
}

// IsFWMark reports whether the service matches packets by firewall mark.
func (s *Service) IsFWMark() bool { return s.FWMark != 0 }

// Flags returns the kernel flag bits of the service (without HASHED, which the kernel adds).
func (s *Service) Flags() uint32 {
	var f uint32
	if s.Persistence > 0 {
		f |= SvcFlagPersistent
	}
	if s.OnePacket {
		f |= SvcFlagOnePacket
	}
	for _, name := range s.SchedFlags {
		f |= schedFlagBit(name)
	}
	return f
}

// Clone returns a deep copy.
func (s *Service) Clone() *Service {
	c := *s
	c.SchedFlags = slices.Clone(s.SchedFlags)
	c.HealthCheck = s.HealthCheck.Clone()
	return &c
}

// RSKey identifies a real server within the cluster.
type RSKey struct {
	Service string     `json:"service"`
	Addr    netip.Addr `json:"addr"`
	Port    uint16     `json:"port"`
}

// RealServer is one destination of a virtual service.
type RealServer struct {
	Service string     `json:"service"`
	Addr    netip.Addr `json:"addr"`
	Port    uint16     `json:"port"`
	Weight  int        `json:"weight"`

	UpperThreshold uint32 `json:"upper_threshold,omitempty"`
	LowerThreshold uint32 `json:"lower_threshold,omitempty"`

	// Forwarding overrides the service's method; "" inherits it.
	Forwarding Forwarding `json:"forwarding,omitempty"`

	// HealthCheck overrides the service's check for this real server (nil: the
	// service's). A spec reached from the state is never modified in place.
	HealthCheck *HealthCheck `json:"health_check,omitempty"`

	Origin string     `json:"origin"` // OriginOperator or AgentOrigin(id)
	Admin  AdminState `json:"admin"`
	Health Health     `json:"health"`
	// HealthReason says why (the checks' last word: "HTTP 503", "connect: refused"),
	// HealthSince when the verdict last changed, as the leader that committed it saw it.
	HealthReason string    `json:"health_reason,omitempty"`
	HealthSince  time.Time `json:"health_since,omitzero"`
}

// Key returns the identity of the real server.
func (r *RealServer) Key() RSKey { return RSKey{Service: r.Service, Addr: r.Addr, Port: r.Port} }

// Method returns the forwarding method in force for this real server under svc.
func (r *RealServer) Method(svc *Service) Forwarding {
	if r.Forwarding != "" {
		return r.Forwarding
	}
	return svc.Forwarding
}

// InRotation reports whether the real server should take new connections.
func (r *RealServer) InRotation() bool {
	return r.Admin == Active && r.Health != HealthDown
}

// IsAgent reports whether an agent registered this real server.
func (r *RealServer) IsAgent() bool { return r.Origin != OriginOperator }

func schedFlagBit(name string) uint32 {
	switch name {
	case FlagSHFallback, FlagMHFallback, Flag1:
		return SvcFlagSched1
	case FlagSHPort, FlagMHPort, Flag2:
		return SvcFlagSched2
	case Flag3:
		return SvcFlagSched3
	}
	return 0
}

// SchedFlagNames returns the canonical names of the scheduler flag bits for a scheduler,
// in bit order, as ipvsadm prints them.
func SchedFlagNames(scheduler string, flags uint32) []string {
	var names []string
	for _, bit := range []uint32{SvcFlagSched1, SvcFlagSched2, SvcFlagSched3} {
		if flags&bit != 0 {
			names = append(names, canonicalFlagName(scheduler, bit))
		}
	}
	return names
}

func canonicalFlagName(scheduler string, bit uint32) string {
	switch {
	case scheduler == "sh" && bit == SvcFlagSched1:
		return FlagSHFallback
	case scheduler == "sh" && bit == SvcFlagSched2:
		return FlagSHPort
	case scheduler == "mh" && bit == SvcFlagSched1:
		return FlagMHFallback
	case scheduler == "mh" && bit == SvcFlagSched2:
		return FlagMHPort
	case bit == SvcFlagSched1:
		return Flag1
	case bit == SvcFlagSched2:
		return Flag2
	}
	return Flag3
}
