package fsm

import (
	"net/netip"
	"slices"
)

// VIP is an address the leader holds without a service of its own: keepalived's
// virtual_ipaddress, for a proxy beside raftlvs (HAProxy, nginx, a Kubernetes API) or a
// VIP-only director. Service VIPs need no declaration; a declared VIP equal to a service's
// VIP is held once, on the declaration's interface.
type VIP struct {
	// Prefix is the address and the length it was declared with (10.0.0.100/24). The
	// address is put on the interface as a host address (/32, /128) whatever the length:
	// the host prefix is how a director tells a VIP from its own address on the same
	// interface (director/vip/DESIGN.md), so that a release never removes the node's
	// address. The length says which subnet the VIP belongs to and is checked.
	Prefix netip.Prefix `json:"prefix"`
	// Interface carries the VIP; "" is each director's --vip-interface.
	Interface string `json:"interface,omitempty"`
	// Name is an optional label for operators.
	Name string `json:"name,omitempty"`
}

// Addr is the VIP's address.
func (v VIP) Addr() netip.Addr { return v.Prefix.Addr() }

// AddVIP declares a VIP; its address must be new.
type AddVIP struct {
	VIP VIP `json:"vip"`
}

// RemoveVIP forgets a declared VIP.
type RemoveVIP struct {
	Addr netip.Addr `json:"addr"`
}

// Types 23..25 are this feature's; 25 is unused so far.
const (
	TypeAddVIP    CommandType = 23
	TypeRemoveVIP CommandType = 24
)

func (AddVIP) Type() CommandType    { return TypeAddVIP }
func (RemoveVIP) Type() CommandType { return TypeRemoveVIP }

// MaxInterfaceNameLen is the kernel's IFNAMSIZ less the terminating NUL.
const MaxInterfaceNameLen = 15

// DeclaredVIP returns the VIP declared at addr.
func (s *State) DeclaredVIP(addr netip.Addr) (VIP, bool) {
	v, ok := s.vips[addr]
	return v, ok
}

// DeclaredVIPs returns the declared VIPs by address.
func (s *State) DeclaredVIPs() []VIP {
	out := make([]VIP, 0, len(s.vips))
	for _, v := range s.vips {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b VIP) int { return a.Addr().Compare(b.Addr()) })
	return out
}

// checkVIP is what Apply checks of a declaration: the rules that can never change (a
// canonical unicast address, a length its family has, a plausible interface name). The
// rules about which addresses are usable are Prepare's (vipUsable).
func checkVIP(v VIP) error {
	a := v.Prefix.Addr()
	switch {
	case !v.Prefix.IsValid():
		return invalid("prefix", "required: ADDR or ADDR/LEN")
	case a.Is4In6():
		return invalid("prefix", "%s: write an IPv4 address as such", a)
	case a.IsUnspecified() || a.IsMulticast():
		return invalid("prefix", "%s is not a unicast address", a)
	}
	if err := checkInterfaceName(v.Interface); err != nil {
		return err
	}
	if v.Name != "" {
		return validateName("name", v.Name)
	}
	return nil
}

func checkInterfaceName(name string) error {
	if len(name) > MaxInterfaceNameLen {
		return invalid("interface", "%q is longer than %d characters", name, MaxInterfaceNameLen)
	}
	for _, c := range name {
		if c <= ' ' || c == '/' || c == ':' || c > '~' {
			return invalid("interface", "%q: not a Linux interface name", name)
		}
	}
	if name == "." || name == ".." {
		return invalid("interface", "%q: not a Linux interface name", name)
	}
	return nil
}

// vipUsable refuses, when a declaration is prepared, an address that no client could
// reach (checkUsable) and one that is its subnet's network or broadcast address.
func vipUsable(v VIP) error {
	a := v.Prefix.Addr()
	if err := checkUsable("prefix", a); err != nil {
		return err
	}
	if a.Is4() && v.Prefix.Bits() < 31 {
		network := v.Prefix.Masked().Addr()
		broadcast := lastAddr(v.Prefix)
		if a == network || a == broadcast {
			return invalid("prefix", "%s is the network or broadcast address of %s", a, v.Prefix.Masked())
		}
	}
	return nil
}

// lastAddr is the highest address of an IPv4 prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	n := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | host
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

func (c AddVIP) check(s *State) error {
	if err := checkVIP(c.VIP); err != nil {
		return err
	}
	if old, ok := s.vips[c.VIP.Addr()]; ok {
		return exists("prefix", "VIP %s is declared already (as %s)", c.VIP.Addr(), old.Prefix)
	}
	return nil
}

func (c AddVIP) mutate(s *State) {
	s.rememberVIP(c.VIP.Addr())
	s.vips[c.VIP.Addr()] = c.VIP
}

func (c RemoveVIP) check(s *State) error {
	if _, ok := s.vips[c.Addr]; !ok {
		return notFound("addr", "no declared VIP %s", c.Addr)
	}
	return nil
}

func (c RemoveVIP) mutate(s *State) {
	s.rememberVIP(c.Addr)
	delete(s.vips, c.Addr)
}

// rememberVIP records the declaration at addr before a command changes it, so that a
// batch failing later puts it back (undo.go).
func (s *State) rememberVIP(addr netip.Addr) {
	var old any
	if v, ok := s.vips[addr]; ok {
		old = v
	}
	s.remember(undoVIP, RSKey{Addr: addr}, old)
}

func (s *State) undoVIP(e undoEntry) {
	if old, ok := e.old.(VIP); ok {
		s.vips[e.key.Addr] = old
	} else {
		delete(s.vips, e.key.Addr)
	}
}

// HeldVIPs is every VIP the leader holds, by address: the declared ones, and the distinct
// VIPs of the services (host addresses on the default interface) that no declaration
// names. Fwmark services have no VIP: their addresses are the operator's business.
func (s *State) HeldVIPs() []VIP {
	out := s.DeclaredVIPs()
	for _, svc := range s.services {
		if a := svc.VIP; a.IsValid() {
			if _, declared := s.vips[a]; !declared {
				out = append(out, VIP{Prefix: netip.PrefixFrom(a, a.BitLen())})
			}
		}
	}
	slices.SortFunc(out, func(a, b VIP) int { return a.Addr().Compare(b.Addr()) })
	return slices.CompactFunc(out, func(a, b VIP) bool { return a.Addr() == b.Addr() })
}
