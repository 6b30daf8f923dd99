package realserver

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/raftlvs/raftlvs/fsm"
)

// Binding is one VIP this real server serves and how the directors forward to it.
type Binding struct {
	VIP    netip.Addr
	Method fsm.Forwarding
}

func (b Binding) String() string { return fmt.Sprintf("%s (%s)", b.VIP, b.Method) }

// ErrUnsupported classifies bindings the agent cannot configure.
var ErrUnsupported = errors.New("unsupported")

// Labels mark the agent's IPv4 addresses in `ip addr` output.
const (
	loLabel   = LoopbackLink + ":raftlvs"
	tunlLabel = IPIPLink + ":raftlvs"
)

// sysctlWant is a sysctl value a binding needs. ok says whether the current value already
// serves; if not, the sysctl is set to target.
type sysctlWant struct {
	path   string
	target int
	ok     func(cur int) bool
	tun    bool // needed by TUN bindings only: pointless without the tunnel device
}

// atLeast is for arp_ignore and arp_announce: a higher value is stricter, and an operator
// who chose a stricter one keeps it.
func atLeast(path string, v int) sysctlWant {
	return sysctlWant{path: path, target: v, ok: func(cur int) bool { return cur >= v }}
}

// rpFilterRelaxed: decapsulated packets arrive on tunl0 with the client's source address,
// which the reverse path check in strict mode (1) rejects because the route back to the
// client goes out of another interface. Off (0) and loose (2, only "reachable somewhere")
// both let them in, so only strict mode is changed, and to off.
func rpFilterRelaxed(path string) sysctlWant {
	return sysctlWant{path: path, target: 0, ok: func(cur int) bool { return cur != 1 }, tun: true}
}

type linkAddr struct {
	link string
	addr Address
}

// plan is the host configuration a set of bindings needs.
type plan struct {
	ipip    bool
	sysctls []sysctlWant // in the order to apply
	addrs   []linkAddr
	routes  []Route
}

func (p *plan) wantsRoute(r Route) bool { return slices.Contains(p.routes, r) }

func (p *plan) wantsSysctl(path string) bool {
	return slices.ContainsFunc(p.sysctls, func(w sysctlWant) bool { return w.path == path })
}

func (p *plan) wantsAddr(link string, a Address) bool {
	return slices.ContainsFunc(p.addrs, func(x linkAddr) bool { return x.link == link && x.addr.Prefix == a.Prefix })
}

func (p *plan) addSysctl(w sysctlWant) {
	if !p.wantsSysctl(w.path) {
		p.sysctls = append(p.sysctls, w)
	}
}

func (p *plan) addAddr(link string, a Address) {
	if !p.wantsAddr(link, a) {
		p.addrs = append(p.addrs, linkAddr{link, a})
	}
}

// planFor turns bindings into host configuration. iface is the egress interface whose ARP
// behaviour must change; it is needed only for IPv4 DR and TUN bindings.
// natRoute, if valid, is the route back through a director that NAT bindings of its
// family need.
func planFor(bindings []Binding, iface string, natRoute Route) (plan, error) {
	var p plan
	var errs []error
	arp := func() {
		// The kernel uses max(all, iface) for both, so "all" alone would do; the interface
		// is set as well so that `sysctl` on it shows what is in force.
		for _, link := range []string{"all", iface} {
			p.addSysctl(atLeast(confPath(link, "arp_ignore"), 1))   // answer ARP only for addresses on the receiving interface
			p.addSysctl(atLeast(confPath(link, "arp_announce"), 2)) // never use the VIP as the source of our own ARP requests
		}
	}
	for _, b := range bindings {
		if !b.VIP.IsValid() {
			errs = append(errs, fmt.Errorf("binding %s: no VIP: %w", b, ErrUnsupported))
			continue
		}
		vip := b.VIP.Unmap()
		switch {
		case b.Method == fsm.NAT:
			// The director rewrites the destination to our own address. Replies must
			// pass back through a director to be rewritten too; that is the network's
			// routing unless the operator asked the agent to install the route.
			if natRoute.Via.IsValid() && natRoute.Via.Is4() == vip.Is4() && !p.wantsRoute(natRoute) {
				p.routes = append(p.routes, natRoute)
			}
		case b.Method == fsm.DR && vip.Is6():
			// IPv6 neighbour discovery answers only for addresses on the receiving
			// interface, so a VIP on lo is already invisible to the network. No scope:
			// the kernel derives an IPv6 address's scope from the address itself. NODAD:
			// DAD on lo would only delay the VIP's use.
			p.addAddr(LoopbackLink, Address{Prefix: netip.PrefixFrom(vip, 128), NoDAD: true})
		case b.Method == fsm.DR:
			if iface == "" {
				errs = append(errs, fmt.Errorf("binding %s: no egress interface for the ARP sysctls", b))
				continue
			}
			arp()
			p.addAddr(LoopbackLink, Address{Prefix: netip.PrefixFrom(vip, 32), HostScope: true, Label: loLabel})
		case b.Method == fsm.TUN && vip.Is6():
			errs = append(errs, fmt.Errorf("binding %s: IPv6 tunnelling needs ip6tnl: %w", b, ErrUnsupported))
		case b.Method == fsm.TUN:
			if iface == "" {
				errs = append(errs, fmt.Errorf("binding %s: no egress interface for the ARP sysctls", b))
				continue
			}
			p.ipip = true
			// A local address answers ARP on every interface by default, so a TUN real
			// server on the directors' segment would steal the VIP just like a DR one.
			arp()
			p.addSysctl(rpFilterRelaxed(confPath("all", "rp_filter")))
			p.addSysctl(rpFilterRelaxed(confPath(IPIPLink, "rp_filter")))
			p.addAddr(IPIPLink, Address{Prefix: netip.PrefixFrom(vip, 32), HostScope: true, Label: tunlLabel})
		default:
			errs = append(errs, fmt.Errorf("binding %s: unknown forwarding method: %w", b, ErrUnsupported))
		}
	}
	return p, errors.Join(errs...)
}
