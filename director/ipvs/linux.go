//go:build linux

package ipvs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	mobyipvs "github.com/moby/ipvs"
)

// Linux is the kernel's IPVS table: reads through moby/ipvs, writes through a writer of
// our own that sends many of them in one system call (see netlink.go). It refuses to
// start without IPVS (where moby/ipvs would report success for calls that do nothing) and
// serializes calls (neither socket is safe for concurrent use).
type Linux struct {
	mu sync.Mutex
	h  *mobyipvs.Handle
	w  *writer
	// pe remembers the persistence engine of the services written through this handle:
	// moby/ipvs does not parse IPVS_SVC_ATTR_PE_NAME on reads. After a restart the first
	// pass sets it again (one update per service with a PE).
	pe map[ServiceKey]string
}

var (
	_ Kernel      = (*Linux)(nil)
	_ Batcher     = (*Linux)(nil)
	_ StatsReader = (*Linux)(nil)
)

// NewLinux opens the IPVS table of the network namespace at netnsPath ("" for the
// current one). It returns an error wrapping ErrNoIPVS when that kernel has no IPVS.
func NewLinux(netnsPath string) (*Linux, error) {
	family, err := probeIPVS(netnsPath)
	if err != nil {
		return nil, err
	}
	w, err := openWriter(netnsPath, family)
	if err != nil {
		return nil, err
	}
	h, err := mobyipvs.New(netnsPath)
	if err != nil {
		w.close()
		return nil, fmt.Errorf("open IPVS in netns %q: %w", netnsPath, err)
	}
	return &Linux{h: h, w: w, pe: map[ServiceKey]string{}}, nil
}

// probeIPVS resolves the "IPVS" generic-netlink family in the target namespace and
// returns its number.
func probeIPVS(netnsPath string) (uint16, error) {
	cfg := &netlink.Config{}
	if netnsPath != "" {
		f, err := os.Open(netnsPath)
		if err != nil {
			return 0, fmt.Errorf("open netns %s: %w", netnsPath, err)
		}
		defer f.Close()
		cfg.NetNS = int(f.Fd())
	}
	c, err := genetlink.Dial(cfg)
	if err != nil {
		return 0, fmt.Errorf("dial generic netlink in netns %q: %w", netnsPath, err)
	}
	defer c.Close()
	fam, err := c.GetFamily("IPVS")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, fmt.Errorf("netns %q: %w", netnsPath, ErrNoIPVS)
		}
		return 0, fmt.Errorf("look up the IPVS generic netlink family in netns %q: %w", netnsPath, err)
	}
	return fam.ID, nil
}

// Close releases the netlink sockets.
func (l *Linux) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.h.Close()
	l.w.close()
}

func (l *Linux) Services() ([]Service, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ms, err := l.h.GetServices()
	if err != nil {
		return nil, err
	}
	out := make([]Service, 0, len(ms))
	for _, m := range ms {
		s := fromMobyService(m)
		s.PEName = l.pe[s.Key()]
		out = append(out, s)
	}
	return out, nil
}

func (l *Linux) Destinations(svc Service) ([]Destination, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ms, err := l.h.GetDestinations(toMobyService(svc))
	if err != nil {
		return nil, err
	}
	out := make([]Destination, 0, len(ms))
	for _, m := range ms {
		out = append(out, fromMobyDestination(m))
	}
	return out, nil
}

// Apply writes ops in order, many to a system call; see Batcher.
func (l *Linux) Apply(ops []Op) []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	errs := l.w.apply(ops)
	for i, op := range ops {
		switch {
		case op.Kind == OpDeleteService && (errs[i] == nil || isGone(errs[i])):
			delete(l.pe, op.Service.Key())
		case errs[i] != nil:
		case op.Kind == OpAddService || op.Kind == OpUpdateService:
			l.pe[op.Service.Key()] = op.Service.PEName
		}
	}
	return errs
}

func (l *Linux) one(op Op) error { return l.Apply([]Op{op})[0] }

func (l *Linux) AddService(svc Service) error {
	return l.one(Op{Kind: OpAddService, Service: svc})
}

func (l *Linux) UpdateService(svc Service) error {
	return l.one(Op{Kind: OpUpdateService, Service: svc})
}

func (l *Linux) DeleteService(svc Service) error {
	return l.one(Op{Kind: OpDeleteService, Service: svc})
}

func (l *Linux) AddDestination(svc Service, d Destination) error {
	return l.one(Op{Kind: OpAddDestination, Service: svc, Destination: d})
}

func (l *Linux) UpdateDestination(svc Service, d Destination) error {
	return l.one(Op{Kind: OpUpdateDestination, Service: svc, Destination: d})
}

func (l *Linux) DeleteDestination(svc Service, d Destination) error {
	return l.one(Op{Kind: OpDeleteDestination, Service: svc, Destination: d})
}

func (l *Linux) ServiceStats() ([]ServiceStats, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ms, err := l.h.GetServices()
	if err != nil {
		return nil, err
	}
	out := make([]ServiceStats, 0, len(ms))
	for _, m := range ms {
		s := fromMobyService(m)
		out = append(out, ServiceStats{Service: s.Key(), Counters: counters(m.Stats)})
	}
	return out, nil
}

func (l *Linux) DestinationStats(svc Service) ([]DestinationStats, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ms, err := l.h.GetDestinations(toMobyService(svc))
	if err != nil {
		return nil, err
	}
	out := make([]DestinationStats, 0, len(ms))
	for _, m := range ms {
		d := fromMobyDestination(m)
		out = append(out, DestinationStats{
			Destination:         d.Key(),
			ActiveConnections:   m.ActiveConnections,
			InactiveConnections: m.InactiveConnections,
			Counters:            counters(mobyipvs.SvcStats(m.Stats)),
		})
	}
	return out, nil
}

// counters widens moby's counters; connections and packets are 32-bit there (it ignores
// the kernel's STATS64) and wrap.
func counters(s mobyipvs.SvcStats) Counters {
	return Counters{
		Connections: uint64(s.Connections), PacketsIn: uint64(s.PacketsIn), PacketsOut: uint64(s.PacketsOut),
		BytesIn: s.BytesIn, BytesOut: s.BytesOut,
		CPS: uint64(s.CPS), PPSIn: uint64(s.PPSIn), PPSOut: uint64(s.PPSOut), BPSIn: uint64(s.BPSIn), BPSOut: uint64(s.BPSOut),
	}
}

func toMobyService(s Service) *mobyipvs.Service {
	m := &mobyipvs.Service{
		AddressFamily: s.Family,
		Protocol:      s.Protocol,
		Port:          s.Port,
		FWMark:        s.FWMark,
		SchedName:     s.Scheduler,
		Flags:         s.Flags &^ FlagHashed,
		Timeout:       s.Timeout,
		Netmask:       mobyNetmask(s.Family, s.Netmask),
		PEName:        s.PEName,
	}
	if s.FWMark == 0 {
		m.Address = ipOf(s.Address)
	}
	return m
}

func fromMobyService(m *mobyipvs.Service) Service {
	s := Service{
		Family:    m.AddressFamily,
		Protocol:  m.Protocol,
		Port:      m.Port,
		FWMark:    m.FWMark,
		Scheduler: m.SchedName,
		Flags:     m.Flags,
		Timeout:   m.Timeout,
		Netmask:   kernelNetmask(m.AddressFamily, m.Netmask),
		PEName:    m.PEName,
	}
	if m.FWMark != 0 {
		s.Protocol, s.Port = 0, 0
	} else {
		s.Address = addrOf(m.Address)
	}
	return s
}

func fromMobyDestination(m *mobyipvs.Destination) Destination {
	return Destination{
		Address:        addrOf(m.Address),
		Port:           m.Port,
		Weight:         m.Weight,
		Forwarding:     Forwarding(m.ConnectionFlags & mobyipvs.ConnectionFlagFwdMask),
		UpperThreshold: m.UpperThreshold,
		LowerThreshold: m.LowerThreshold,
	}
}

// mobyNetmask turns our netmask into the number moby/ipvs must be given. The kernel reads
// the IPv4 mask with nla_get_be32 (network byte order) but moby writes the number in host
// order, so the mask is passed pre-swapped: its host-order bytes are the network-order mask.
// An IPv6 netmask is a prefix length the kernel reads as a plain u32.
func mobyNetmask(family uint16, mask uint32) uint32 {
	if family == FamilyIPv6 {
		return mask
	}
	return binary.NativeEndian.Uint32(binary.BigEndian.AppendUint32(nil, mask))
}

// kernelNetmask undoes mobyNetmask on what moby read back (in host order).
func kernelNetmask(family uint16, raw uint32) uint32 {
	if family == FamilyIPv6 {
		return raw
	}
	return binary.BigEndian.Uint32(binary.NativeEndian.AppendUint32(nil, raw))
}

func ipOf(a netip.Addr) net.IP {
	if !a.IsValid() {
		return nil
	}
	return net.IP(a.Unmap().AsSlice())
}

func addrOf(ip net.IP) netip.Addr {
	if ip4 := ip.To4(); ip4 != nil {
		ip = ip4
	}
	a, _ := netip.AddrFromSlice(ip)
	return a
}
