package realserver

import (
	"errors"
	"fmt"
	"net/netip"
)

// Host is what the agent needs from the real server's kernel. The Configurator is its only
// consumer; FakeHost and NetlinkHost implement it.
type Host interface {
	// ReadSysctl and WriteSysctl take the path form under /proc/sys
	// ("net/ipv4/conf/eth0.100/arp_ignore"): interface names may contain dots, so the
	// dotted form is ambiguous. A path that does not exist wraps ErrNoSysctl.
	ReadSysctl(path string) (int, error)
	WriteSysctl(path string, value int) error

	// Addrs lists the addresses on a link. A missing link wraps ErrNoLink.
	Addrs(link string) ([]Address, error)
	// AddAddr puts an address on a link; adding one that is already there is no error.
	AddAddr(link string, a Address) error
	// DelAddr removes an address from a link; removing one that is not there is no error.
	DelAddr(link string, a Address) error
	// LinkOf names the link that holds an address (the agent's own address gives the
	// egress interface whose ARP behaviour DR must change). None wraps ErrNoLink.
	LinkOf(addr netip.Addr) (string, error)

	// Route returns the main table's unicast route to dst with metric 0, if any.
	Route(dst netip.Prefix) (Route, bool, error)
	// ReplaceRoute installs r, replacing the route to the same destination and metric.
	ReplaceRoute(r Route) error
	// DelRoute removes r; removing a route that is not there is no error.
	DelRoute(r Route) error

	// EnsureIPIP makes the IPIP fallback device (tunl0) exist and be up, and reports what
	// it had to do. A kernel without IPIP wraps ErrNoIPIP.
	EnsureIPIP() (IPIPChange, error)
	// ReleaseIPIP undoes an EnsureIPIP: it brings tunl0 down, and deletes it if remove.
	ReleaseIPIP(remove bool) error
}

// Route is a route in the main table, metric 0.
type Route struct {
	Dst  netip.Prefix `json:"dst"`
	Via  netip.Addr   `json:"via"`
	Link string       `json:"link,omitempty"` // "": the kernel picks the link that reaches Via
}

func (r Route) String() string {
	s := r.Dst.String() + " via " + r.Via.String()
	if r.Link != "" {
		s += " dev " + r.Link
	}
	return s
}

// IPIPChange is what EnsureIPIP changed, and so what undoing it means.
type IPIPChange string

const (
	IPIPUnchanged IPIPChange = ""        // tunl0 was there and up
	IPIPBroughtUp IPIPChange = "up"      // tunl0 was there but down
	IPIPCreated   IPIPChange = "created" // tunl0 did not exist
)

// Address is an address on a link, as the agent puts it there.
type Address struct {
	Prefix    netip.Prefix // the VIP as /32 or /128
	HostScope bool         // scope host: the address is local but never chosen as a source
	NoDAD     bool         // IPv6: usable at once, no duplicate address detection
	Label     string       // IPv4 only; must start with the link name ("lo:raftlvs")
}

func (a Address) String() string {
	s := a.Prefix.String()
	if a.HostScope {
		s += " scope host"
	}
	if a.NoDAD {
		s += " nodad"
	}
	if a.Label != "" {
		s += " label " + a.Label
	}
	return s
}

// IPIPLink is the IPIP fallback device: the kernel hands it every IPIP packet that no
// configured tunnel matches, which is what a TUN real server receives from any director.
const IPIPLink = "tunl0"

// LoopbackLink holds DR VIPs.
const LoopbackLink = "lo"

// Errors of the Host, classified with errors.Is.
var (
	ErrNoIPIP   = errors.New("kernel has no IPIP tunnel support (module ipip)")
	ErrNoLink   = errors.New("no such link")
	ErrNoSysctl = errors.New("no such sysctl")
)

// Sysctl paths, relative to /proc/sys.
func confPath(link, key string) string { return fmt.Sprintf("net/ipv4/conf/%s/%s", link, key) }
