package api

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/raftlvs/raftlvs/fsm"
)

// VIPRequest is the body of POST /v1/vips: a VIP declared without a service.
type VIPRequest struct {
	// Addr is ADDR or ADDR/LEN, as keepalived's virtual_ipaddress writes it; a bare
	// address is a host address (/32, /128).
	Addr      string `json:"addr"`
	Interface string `json:"interface,omitempty"` // "" is each director's --vip-interface
	Name      string `json:"name,omitempty"`
}

// VIP is the declaration the request asks for, or an error naming the field.
func (r VIPRequest) VIP() (fsm.VIP, error) {
	p, err := ParseVIP(r.Addr)
	if err != nil {
		return fsm.VIP{}, &fsm.FieldError{Field: "addr", Reason: err.Error(), Kind: fsm.ErrInvalid}
	}
	return fsm.VIP{Prefix: p, Interface: r.Interface, Name: r.Name}, nil
}

// ParseVIP reads ADDR or ADDR/LEN. The address is kept as written (10.0.0.100/24 is not
// masked to its network) and an IPv4-mapped IPv6 address becomes IPv4.
func ParseVIP(s string) (netip.Prefix, error) {
	addr, bits, hasLen := strings.Cut(strings.TrimSpace(s), "/")
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q: not an address: ADDR or ADDR/LEN", s)
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q: a VIP has no zone", s)
	}
	if !hasLen {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(a.String() + "/" + bits)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q: bad length: ADDR or ADDR/LEN", s)
	}
	if a.Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("%q: an IPv4-mapped address with a length below 96", s)
		}
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p, nil
}

// VIPInfo is a VIP the leader holds: declared (fsm.VIP as declared), or a service's
// (a host address on the directors' --vip-interface).
type VIPInfo struct {
	fsm.VIP
	Declared bool `json:"declared"`
	// Services are the services whose VIP it is.
	Services []string `json:"services,omitempty"`
}

// VIPList is the answer of GET /v1/vips.
type VIPList struct {
	VIPs []VIPInfo `json:"vips"`
}
