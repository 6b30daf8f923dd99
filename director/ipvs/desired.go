package ipvs

import (
	"maps"
	"slices"

	"github.com/raftlvs/raftlvs/fsm"
)

// Entry is one virtual service of a table and its destinations.
type Entry struct {
	Name         string // the fsm service name ("" for a service raftlvs does not know)
	Service      Service
	Destinations []Destination // by address and port
	// Sorry is set when quorum is lost and the sorry server stands in for the real servers.
	Sorry bool
}

// Equal reports whether two entries program the same kernel state.
func (e *Entry) Equal(o *Entry) bool {
	return e.Service.Equal(o.Service) &&
		slices.EqualFunc(e.Destinations, o.Destinations, Destination.Equal)
}

func (e *Entry) clone() *Entry {
	c := *e
	c.Destinations = slices.Clone(e.Destinations)
	return &c
}

// Table is a whole IPVS table keyed by service.
type Table map[ServiceKey]*Entry

// Sorted returns the entries in ipvsadm's order.
func (t Table) Sorted() []*Entry {
	keys := slices.SortedFunc(maps.Keys(t), ServiceKey.Compare)
	out := make([]*Entry, len(keys))
	for i, k := range keys {
		out[i] = t[k]
	}
	return out
}

// Desired is the table a director programs for state: every service, and for each the
// real servers with their weight if in rotation and 0 otherwise (drained, or down under
// on_down inhibit: existing connections finish, new ones go elsewhere); a real server
// down under on_down remove (the default) is left out. A service whose quorum the state
// says is lost (fsm.Service.QuorumDown, with its hysteresis) and that has a sorry server
// gets only the sorry server.
func Desired(st *fsm.State) Table {
	t := make(Table)
	st.Walk(func(svc *fsm.Service, servers []*fsm.RealServer) {
		e := desiredEntry(svc, servers)
		t[e.Service.Key()] = e
	})
	return t
}

func desiredEntry(svc *fsm.Service, servers []*fsm.RealServer) *Entry {
	e := &Entry{Name: svc.Name, Service: KernelService(svc)}
	e.Destinations = make([]Destination, 0, len(servers))
	for _, rs := range servers {
		if rs.Health == fsm.HealthDown && svc.OnDown != fsm.DownInhibit {
			continue
		}
		d := Destination{
			Address:        rs.Addr.Unmap(),
			Port:           rs.Port,
			Forwarding:     kernelForwarding(rs.Method(svc)),
			UpperThreshold: rs.UpperThreshold,
			LowerThreshold: rs.LowerThreshold,
		}
		if rs.InRotation() {
			d.Weight = rs.Weight
		}
		e.Destinations = append(e.Destinations, d)
	}
	if svc.QuorumDown && svc.SorryServer.IsValid() {
		e.Sorry = true
		e.Destinations = []Destination{sorryDestination(svc)}
	}
	slices.SortFunc(e.Destinations, compareDests)
	return e
}

// sorryDestination is the stand-in for a service that lost its quorum. DR and TUN
// deliver to the service port whatever the sorry server says, as the kernel does.
func sorryDestination(svc *fsm.Service) Destination {
	port := svc.SorryServer.Port()
	if port == 0 || svc.Forwarding != fsm.NAT {
		port = svc.Port
	}
	return Destination{
		Address:    svc.SorryServer.Addr().Unmap(),
		Port:       port,
		Weight:     1,
		Forwarding: kernelForwarding(svc.Forwarding),
	}
}

// KernelService translates an fsm service into the kernel's terms.
func KernelService(svc *fsm.Service) Service {
	family := FamilyIPv4
	if svc.Family == fsm.IPv6 {
		family = FamilyIPv6
	}
	mask := svc.PersistMask
	if mask == 0 {
		mask = svc.Family.Bits()
	}
	s := Service{
		Family:    family,
		Scheduler: svc.Scheduler,
		Flags:     svc.Flags(),
		Timeout:   svc.Persistence,
		Netmask:   PersistNetmask(family, mask),
		PEName:    svc.PersistEngine,
	}
	if s.Scheduler == "" {
		s.Scheduler = fsm.DefaultScheduler
	}
	if svc.IsFWMark() {
		s.FWMark = svc.FWMark
		return s
	}
	s.Protocol = kernelProtocol(svc.Protocol)
	s.Address = svc.VIP.Unmap()
	s.Port = svc.Port
	return s
}

func kernelProtocol(p fsm.Protocol) uint16 {
	switch p {
	case fsm.UDP:
		return ProtocolUDP
	case fsm.SCTP:
		return ProtocolSCTP
	}
	return ProtocolTCP
}

func kernelForwarding(f fsm.Forwarding) Forwarding {
	switch f {
	case fsm.DR:
		return ForwardRoute
	case fsm.TUN:
		return ForwardTunnel
	}
	return ForwardMasq
}
