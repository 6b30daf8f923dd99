package fsm

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strings"
)

// State is the replicated state. The zero value is not usable: call NewState.
// A State is not safe for concurrent use; its owner (the Raft FSM) serializes access.
// Readers may share it (see NeedsExclusive for the one exception).
type State struct {
	clusterID string
	version   uint64 // bumped by every command that changed the state
	services  map[string]*Service
	servers   map[string]map[RSKey]*RealServer // by service name, then key
	directors map[string]Director
	matches   map[MatchKey]string  // what each service matches → its name
	vips      map[netip.Addr]VIP   // declared VIPs by address (vip.go)
	trust     trustState           // tokens, the CA, issued certificates (trust.go)
	staged    map[string]*stagedTx // open staged transactions by id
	// stagedCommands counts the commands of every staged transaction (bounded by
	// MaxStagedCommands).
	stagedCommands int

	undo    []undoEntry // what the entry being applied replaced so far (undo.go)
	journal *journal    // what the last entries touched, for consumers (journal.go)
}

// MatchKey is what a service matches packets by: protocol, VIP and port, or fwmark and
// family. Two services may not share one.
type MatchKey struct {
	fwmark   uint32
	family   Family
	protocol Protocol
	vip      netip.Addr
	port     uint16
}

// Match is s's MatchKey.
func (s *Service) Match() MatchKey {
	if s.FWMark != 0 {
		return MatchKey{fwmark: s.FWMark, family: s.Family}
	}
	return MatchKey{protocol: s.Protocol, vip: s.VIP.Unmap(), port: s.Port}
}

// DescribeMatch names what s matches as an operator writes it: "TCP 192.0.2.10:80",
// "fwmark 7 (ipv4)".
func (s *Service) DescribeMatch() string {
	if s.IsFWMark() {
		return fmt.Sprintf("fwmark %d (%s)", s.FWMark, s.Family)
	}
	return fmt.Sprintf("%s %s", strings.ToUpper(string(s.Protocol)), netip.AddrPortFrom(s.VIP.Unmap(), s.Port))
}

func putService(s *State, svc *Service) {
	if old, ok := s.services[svc.Name]; ok {
		delete(s.matches, old.Match())
	}
	s.services[svc.Name] = svc
	s.matches[svc.Match()] = svc.Name
}

func deleteService(s *State, name string) {
	if old, ok := s.services[name]; ok {
		delete(s.matches, old.Match())
		delete(s.services, name)
	}
}

// NewState returns an empty state.
func NewState() *State {
	return &State{services: map[string]*Service{}, servers: map[string]map[RSKey]*RealServer{}, directors: map[string]Director{},
		matches: map[MatchKey]string{}, vips: map[netip.Addr]VIP{}, trust: newTrustState(), staged: map[string]*stagedTx{}, journal: newJournal(0)}
}

// ClusterID is the id set when the cluster was bootstrapped.
func (s *State) ClusterID() string { return s.clusterID }

// Version counts the changes applied so far; equal logs give equal versions.
func (s *State) Version() uint64 { return s.version }

// Service returns a copy of the named service.
func (s *State) Service(name string) (Service, bool) {
	svc, ok := s.services[name]
	if !ok {
		return Service{}, false
	}
	return *svc.Clone(), true
}

// Services returns copies of all services in ipvsadm's listing order.
func (s *State) Services() []Service {
	out := make([]Service, 0, len(s.services))
	for _, svc := range s.services {
		out = append(out, *svc.Clone())
	}
	slices.SortFunc(out, func(a, b Service) int { return CompareServices(&a, &b) })
	return out
}

// RealServer returns a copy of one real server.
func (s *State) RealServer(k RSKey) (RealServer, bool) {
	rs, ok := s.server(k)
	if !ok {
		return RealServer{}, false
	}
	return *rs, true
}

// RealServers returns copies of the real servers of a service, ordered by address and port.
func (s *State) RealServers(service string) []RealServer {
	var out []RealServer
	for _, rs := range s.servers[service] {
		out = append(out, *rs)
	}
	slices.SortFunc(out, CompareRealServers)
	return out
}

// AllRealServers returns copies of every real server, by service name, address and port.
func (s *State) AllRealServers() []RealServer {
	var out []RealServer
	for _, servers := range s.servers {
		for _, rs := range servers {
			out = append(out, *rs)
		}
	}
	slices.SortFunc(out, func(a, b RealServer) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), CompareRealServers(a, b))
	})
	return out
}

// FindService returns the service that matches the same packets as svc (same protocol, VIP
// and port, or same fwmark and family), if any.
func (s *State) FindService(svc *Service) (Service, bool) {
	name, ok := s.matches[svc.Match()]
	if !ok {
		return Service{}, false
	}
	return *s.services[name].Clone(), true
}

// Walk calls fn for every service and its real servers, in no particular order, without
// copying: the reconciler's pass over a 10,000-service table uses it. fn must neither
// keep nor modify what it is given.
func (s *State) Walk(fn func(svc *Service, servers []*RealServer)) {
	var buf []*RealServer
	for name, svc := range s.services {
		buf = s.appendServers(buf[:0], name)
		fn(svc, buf)
	}
}

// WalkService is Walk for one service: it calls fn with the named service and its real
// servers, unless there is no such service. The reconciler recomputes a changed service
// with it.
func (s *State) WalkService(name string, fn func(svc *Service, servers []*RealServer)) bool {
	svc, ok := s.services[name]
	if ok {
		fn(svc, s.appendServers(nil, name))
	}
	return ok
}

func (s *State) appendServers(buf []*RealServer, service string) []*RealServer {
	for _, rs := range s.servers[service] {
		buf = append(buf, rs)
	}
	return buf
}

func (s *State) server(k RSKey) (*RealServer, bool) {
	rs, ok := s.servers[k.Service][k]
	return rs, ok
}

// putServer stores rs itself: the state owns it from then on and never changes it.
func putServer(s *State, rs *RealServer) {
	servers := s.servers[rs.Service]
	if servers == nil {
		servers = map[RSKey]*RealServer{}
		s.servers[rs.Service] = servers
	}
	servers[rs.Key()] = rs
}

// deleteServer removes one real server; an emptied service entry goes too, so that equal
// states have equal maps.
func deleteServer(s *State, k RSKey) {
	delete(s.servers[k.Service], k)
	if len(s.servers[k.Service]) == 0 {
		delete(s.servers, k.Service)
	}
}

// Clone returns an independent copy. Services, real servers and staged transactions are
// shared: the state never changes them in place. The copy's journal starts afresh, so a
// Cursor of s reads everything from it.
func (s *State) Clone() *State {
	c := &State{
		clusterID:      s.clusterID,
		version:        s.version,
		services:       maps.Clone(s.services),
		servers:        make(map[string]map[RSKey]*RealServer, len(s.servers)),
		directors:      maps.Clone(s.directors),
		matches:        maps.Clone(s.matches),
		vips:           maps.Clone(s.vips),
		trust:          s.trust.clone(),
		staged:         maps.Clone(s.staged),
		stagedCommands: s.stagedCommands,
		journal:        newJournal(s.version),
	}
	for name, servers := range s.servers {
		c.servers[name] = maps.Clone(servers)
	}
	return c
}

// Equal reports whether two states hold the same facts.
func (s *State) Equal(o *State) bool {
	return s.clusterID == o.clusterID && s.version == o.version &&
		reflect.DeepEqual(s.services, o.services) && reflect.DeepEqual(s.servers, o.servers) &&
		maps.Equal(s.directors, o.directors) && maps.Equal(s.vips, o.vips) && reflect.DeepEqual(s.staged, o.staged) && s.trust.equal(o.trust)
}

// CompareServices orders services as ipvsadm lists them: fwmark services after the others
// (by mark), then family (IPv4 first), protocol (tcp, udp, sctp), address and port.
func CompareServices(a, b *Service) int {
	return cmp.Or(
		cmp.Compare(a.FWMark, b.FWMark),
		cmp.Compare(a.Family.Bits(), b.Family.Bits()),
		cmp.Compare(protoNumber(a.Protocol), protoNumber(b.Protocol)),
		a.VIP.Compare(b.VIP),
		cmp.Compare(a.Port, b.Port),
	)
}

// CompareRealServers orders real servers by address then port.
func CompareRealServers(a, b RealServer) int {
	return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port))
}

// protoNumber is the IP protocol number, which orders ipvsadm's listing.
func protoNumber(p Protocol) int {
	switch p {
	case TCP:
		return 6
	case UDP:
		return 17
	case SCTP:
		return 132
	}
	return 0
}
