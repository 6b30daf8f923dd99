package ipvsadm

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"strconv"
	"strings"
)

// parseHostPort reads ADDR[:PORT] or [IPV6]:PORT the way ipvsadm's parse_service does, but
// numeric only: a bare IPv6 address has no port, and brackets need one.
func parseHostPort(option, s string) (addr netip.Addr, port uint16, hasPort bool, err error) {
	host, portText := s, ""
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.IndexByte(s, ']')
		if end < 0 || !strings.HasPrefix(s[end+1:], ":") {
			return addr, 0, false, invalid(option, "%q: write an IPv6 address with a port as [ADDR]:PORT", s)
		}
		host, portText, hasPort = s[1:end], s[end+2:], true
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() {
			return addr, 0, false, invalid(option, "%q: only IPv6 addresses go in brackets", s)
		}
	case strings.Count(s, ":") > 1:
		// A bare IPv6 address: ipvsadm reads it whole, with no port.
	default:
		host, portText, hasPort = strings.Cut(s, ":")
	}
	addr, err = parseAddr(option, host)
	if err != nil {
		return addr, 0, false, err
	}
	if hasPort {
		if port, err = parsePort(option, portText); err != nil {
			return addr, 0, false, err
		}
	}
	return addr, port, hasPort, nil
}

func parseAddr(option, s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		return netip.Addr{}, invalid(option, "%q is not a numeric IP address (names are not resolved: save with -n)", s)
	case a.Zone() != "":
		return netip.Addr{}, invalid(option, "%q: IPVS addresses have no zone", s)
	case a.Is4In6():
		return netip.Addr{}, invalid(option, "%q is an IPv4-mapped address: write it as IPv4", s)
	}
	return a, nil
}

func parsePort(option, s string) (uint16, error) {
	if !isDecimal(s) {
		return 0, invalid(option, "port %q is not a number (names are not resolved: save with -n)", s)
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, invalid(option, "port %s is out of range 0..65535", s)
	}
	return uint16(n), nil
}

// parseIPv4Mask turns a dotted netmask into a prefix length.
func parseIPv4Mask(option, s string) (int, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return 0, invalid(option, "%q is not a dotted IPv4 netmask such as 255.255.255.0", s)
	}
	b := a.As4()
	m := binary.BigEndian.Uint32(b[:])
	ones := bits.LeadingZeros32(^m)
	if m<<ones != 0 {
		return 0, invalid(option, "%s is not a contiguous netmask", s)
	}
	if ones == 0 {
		return 0, invalid(option, "netmask %s is out of range /1../32", s)
	}
	return ones, nil
}

// ParseNetmask reads a persistence granularity as raftlvs's command line takes it: a
// prefix length, or a dotted IPv4 netmask (all ipvsadm -M takes for IPv4).
func ParseNetmask(s string) (int, error) {
	if isDecimal(s) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 128 {
			return 0, invalid("netmask", "prefix length %s is out of range 1..128", s)
		}
		return n, nil
	}
	return parseIPv4Mask("netmask", s)
}

// formatIPv4Mask is inet_ntoa of a prefix length's mask.
func formatIPv4Mask(prefix int) string {
	m := ^uint32(0) << (32 - prefix)
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], m)
	return netip.AddrFrom4(b).String()
}

// HostPort prints ADDR:PORT or [ADDR]:PORT as ipvsadm -n does.
func HostPort(a netip.Addr, port uint16) string { return hostPort(a, port) }

func hostPort(a netip.Addr, port uint16) string {
	p := strconv.FormatUint(uint64(port), 10)
	if a.Is4() {
		return a.String() + ":" + p
	}
	return "[" + inetNtop6(a) + "]:" + p
}

// inetNtop6 is glibc's inet_ntop for IPv6. It matches Go's RFC 5952 text except for the
// IPv4-compatible addresses (::a.b.c.d, the first 96 bits zero and the next 16 not), which
// glibc prints with an embedded dotted quad.
func inetNtop6(a netip.Addr) string {
	b := a.As16()
	compatible := b[12] != 0 || b[13] != 0
	for _, x := range b[:12] {
		compatible = compatible && x == 0
	}
	if compatible {
		return "::" + netip.AddrFrom4([4]byte(b[12:])).String()
	}
	return a.String()
}

func isDecimal(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
