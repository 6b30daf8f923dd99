package ipvsadm

import (
	"encoding/binary"
	"net/netip"
	"slices"

	"github.com/raftlvs/raftlvs/fsm"
)

// group is a service with its real servers, both normalized and in ipvsadm's order.
type group struct {
	service fsm.Service
	servers []fsm.RealServer
}

// arrange normalizes copies of the rule set and puts it in ipvsadm's order. Real servers
// whose service is not in the set are returned apart, in their given order.
func (r *Rules) arrange() (groups []group, orphans []fsm.RealServer) {
	groups = make([]group, len(r.Services))
	byName := make(map[string]int, len(r.Services))
	for i := range r.Services {
		svc := r.Services[i].Clone()
		fsm.NormalizeService(svc)
		groups[i].service = *svc
		if _, dup := byName[svc.Name]; !dup {
			byName[svc.Name] = i
		}
	}
	for _, rs := range r.RealServers {
		i, ok := byName[rs.Service]
		if !ok {
			orphans = append(orphans, rs)
			continue
		}
		fsm.NormalizeRealServer(&rs, &groups[i].service)
		groups[i].servers = append(groups[i].servers, rs)
	}
	sortGroups(groups)
	return groups, orphans
}

// sortGroups puts the groups, and the real servers of each, in ipvsadm's order.
func sortGroups(groups []group) {
	sortLikeIPVSAdm(groups,
		func(a, b group) int { return fsm.CompareServices(&a.service, &b.service) },
		func(a, b group) int { return compareServices(&a.service, &b.service) })
	for i := range groups {
		sortLikeIPVSAdm(groups[i].servers, fsm.CompareRealServers,
			func(a, b fsm.RealServer) int { return compareAddrs(a.Addr, b.Addr, a.Port, b.Port) })
	}
}

// sortLikeIPVSAdm sorts with ipvsadm's comparator after a sort by a true total order.
//
// ipvsadm's comparators are not transitive (see compareServices), so on a set that wraps
// around the address space its output depends on the order the kernel listed the entries
// in, which no reader of the saved text can know. The first sort makes the result depend on
// the set alone, so Write gives the same text from a parsed file and from the cluster
// state. On every set where the comparator is consistent (all addresses within half the
// address space of each other once the wrap is taken into account, which covers the 10.x
// and 200.x mix) the result is exactly ipvsadm's.
func sortLikeIPVSAdm[T any](s []T, total, quirky func(a, b T) int) {
	slices.SortFunc(s, total)
	slices.SortStableFunc(s, quirky)
}

// compareServices is libipvs's ipvs_cmp_services: fwmark, address family, protocol,
// address, port. Like the C, it subtracts unsigned 32-bit fields and keeps the result as a
// signed int, so values 2^31 or more apart compare inverted: 200.0.0.1 sorts before
// 10.0.0.1, and a fwmark of 2^31+1 or more sorts before the non-fwmark services.
func compareServices(a, b *fsm.Service) int {
	if r := wrapSub(a.FWMark, b.FWMark); r != 0 {
		return r
	}
	if r := afNumber(a.Family) - afNumber(b.Family); r != 0 {
		return r
	}
	if r := protoNumber(a) - protoNumber(b); r != 0 {
		return r
	}
	return compareAddrs(a.VIP, b.VIP, a.Port, b.Port)
}

// compareAddrs is the address-then-port part of ipvs_cmp_services, and all of
// ipvs_cmp_dests: IPv6 addresses compare 32-bit word by word, each with the same
// wrap-around subtraction.
func compareAddrs(a, b netip.Addr, portA, portB uint16) int {
	wa, wb := words(a), words(b)
	n := 1
	if a.Is6() {
		n = 4
	}
	for i := range n {
		if r := wrapSub(wa[i], wb[i]); r != 0 {
			return r
		}
	}
	return int(portA) - int(portB)
}

// wrapSub is C's `int r = a - b` on two unsigned 32-bit values.
func wrapSub(a, b uint32) int { return int(int32(a - b)) }

// words returns an address as host-order 32-bit words (an IPv4 address in the first one),
// and zeros for the missing address of a fwmark service.
func words(a netip.Addr) [4]uint32 {
	var w [4]uint32
	switch {
	case a.Is4():
		b := a.As4()
		w[0] = binary.BigEndian.Uint32(b[:])
	case a.Is6():
		b := a.As16()
		for i := range w {
			w[i] = binary.BigEndian.Uint32(b[4*i:])
		}
	}
	return w
}

// afNumber is the Linux AF_* value, which orders ipvsadm's listing.
func afNumber(f fsm.Family) int {
	if f == fsm.IPv6 {
		return 10 // AF_INET6
	}
	return 2 // AF_INET
}

// protoNumber is the IP protocol number. ipvsadm creates fwmark services as TCP.
func protoNumber(s *fsm.Service) int {
	switch s.Protocol {
	case fsm.UDP:
		return 17
	case fsm.SCTP:
		return 132
	}
	return 6
}
