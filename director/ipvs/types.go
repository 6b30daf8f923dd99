// Package ipvs is what a director does to its kernel's IPVS table: the kernel-side types,
// the narrow Kernel interface the Reconciler needs (with a stateful Fake and the Linux
// implementation over moby/ipvs), and the Reconciler that keeps the table equal to the
// replicated state. See DESIGN.md beside this file.
package ipvs

import (
	"cmp"
	"fmt"
	"net/netip"
)

// Address families and protocols as Linux numbers them (IPVS speaks Linux's numbers
// whatever OS the CLI is built for: AF_INET6 is 30 on macOS).
const (
	FamilyIPv4 uint16 = 2  // AF_INET
	FamilyIPv6 uint16 = 10 // AF_INET6

	ProtocolTCP  uint16 = 6   // IPPROTO_TCP
	ProtocolUDP  uint16 = 17  // IPPROTO_UDP
	ProtocolSCTP uint16 = 132 // IPPROTO_SCTP
)

// Kernel service flag bits (include/uapi/linux/ip_vs.h).
const (
	FlagPersistent uint32 = 0x01
	FlagHashed     uint32 = 0x02 // set by the kernel on every service it holds
	FlagOnePacket  uint32 = 0x04
	FlagSched1     uint32 = 0x08
	FlagSched2     uint32 = 0x10
	FlagSched3     uint32 = 0x20

	// userFlags are the bits a client sets; anything else is the kernel's bookkeeping.
	userFlags = FlagPersistent | FlagOnePacket | FlagSched1 | FlagSched2 | FlagSched3
)

// Forwarding is the kernel's forwarding method of a destination (IP_VS_CONN_F_FWD_MASK bits).
type Forwarding uint32

const (
	ForwardMasq   Forwarding = 0 // NAT
	ForwardLocal  Forwarding = 1 // the kernel's choice for a destination that is a local address
	ForwardTunnel Forwarding = 2 // IPIP
	ForwardRoute  Forwarding = 3 // direct routing
)

func (f Forwarding) String() string {
	switch f {
	case ForwardMasq:
		return "masq"
	case ForwardLocal:
		return "local"
	case ForwardTunnel:
		return "tunnel"
	case ForwardRoute:
		return "route"
	}
	return fmt.Sprintf("forwarding(%d)", uint32(f))
}

// ServiceKey identifies a kernel virtual service: protocol, address and port, or fwmark
// and family.
type ServiceKey struct {
	Family   uint16     `json:"family"`
	Protocol uint16     `json:"protocol,omitempty"`
	Address  netip.Addr `json:"address,omitzero"`
	Port     uint16     `json:"port,omitempty"`
	FWMark   uint32     `json:"fwmark,omitempty"`
}

func (k ServiceKey) String() string {
	if k.FWMark != 0 {
		if k.Family == FamilyIPv6 {
			return fmt.Sprintf("FWM %d IPv6", k.FWMark)
		}
		return fmt.Sprintf("FWM %d", k.FWMark)
	}
	return fmt.Sprintf("%s %s", protocolName(k.Protocol), netip.AddrPortFrom(k.Address, k.Port))
}

// Compare orders keys as ipvsadm lists services: address services before fwmark ones.
func (k ServiceKey) Compare(o ServiceKey) int {
	return cmp.Or(
		cmp.Compare(k.FWMark, o.FWMark),
		cmp.Compare(k.Family, o.Family),
		cmp.Compare(k.Protocol, o.Protocol),
		k.Address.Compare(o.Address),
		cmp.Compare(k.Port, o.Port),
	)
}

func protocolName(p uint16) string {
	switch p {
	case ProtocolTCP:
		return "TCP"
	case ProtocolUDP:
		return "UDP"
	case ProtocolSCTP:
		return "SCTP"
	}
	return fmt.Sprintf("proto-%d", p)
}

// Service is a kernel virtual service.
type Service struct {
	Family    uint16
	Protocol  uint16 // 0 for a fwmark service
	Address   netip.Addr
	Port      uint16
	FWMark    uint32
	Scheduler string
	Flags     uint32 // Flag* bits
	Timeout   uint32 // persistence timeout in seconds
	// Netmask is the persistence granularity in the kernel's terms: for IPv4 the mask as a
	// number (0xffffff00 is /24), for IPv6 the prefix length (1..128). See PersistNetmask.
	Netmask uint32
	PEName  string // persistence engine: "" or "sip"
}

// Key returns the identity of the service.
func (s *Service) Key() ServiceKey {
	if s.FWMark != 0 {
		return ServiceKey{Family: s.Family, FWMark: s.FWMark}
	}
	return ServiceKey{Family: s.Family, Protocol: s.Protocol, Address: s.Address.Unmap(), Port: s.Port}
}

func (s *Service) String() string { return s.Key().String() }

// Normalized returns the service as a client would have set it: without the bits the
// kernel adds (HASHED), with an unmapped address.
func (s Service) Normalized() Service {
	s.Flags &= userFlags
	s.Address = s.Address.Unmap()
	return s
}

// Equal reports whether two services are the same once normalized; a service read back
// from the kernel equals the one that was written.
func (s Service) Equal(o Service) bool { return s.Normalized() == o.Normalized() }

// PersistNetmask returns the kernel's netmask for a persistence granularity given as a
// prefix length: an IPv4 mask as a number, or the IPv6 prefix length itself.
func PersistNetmask(family uint16, prefixLen int) uint32 {
	if family == FamilyIPv6 {
		return uint32(prefixLen)
	}
	if prefixLen <= 0 {
		return 0
	}
	if prefixLen >= 32 {
		return 0xffffffff
	}
	return ^uint32(0) << (32 - prefixLen)
}

// DestKey identifies a destination within its service.
type DestKey struct {
	Address netip.Addr
	Port    uint16
}

func (k DestKey) String() string { return netip.AddrPortFrom(k.Address, k.Port).String() }

// Destination is a kernel real server of a virtual service.
type Destination struct {
	Address        netip.Addr
	Port           uint16
	Weight         int
	Forwarding     Forwarding
	UpperThreshold uint32
	LowerThreshold uint32
}

// Key returns the identity of the destination within its service.
func (d *Destination) Key() DestKey { return DestKey{Address: d.Address.Unmap(), Port: d.Port} }

func (d *Destination) String() string { return d.Key().String() }

// Normalized returns the destination with an unmapped address.
func (d Destination) Normalized() Destination {
	d.Address = d.Address.Unmap()
	return d
}

// Equal reports whether two destinations are the same once normalized.
func (d Destination) Equal(o Destination) bool { return d.Normalized() == o.Normalized() }
