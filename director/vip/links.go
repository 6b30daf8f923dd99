package vip

import (
	"errors"
	"net"
	"net/netip"
)

// Error classes; callers classify with errors.Is.
var (
	// ErrBadConfig classifies every Config rejected by NewOwner.
	ErrBadConfig = errors.New("bad VIP owner config")
	// ErrBadVIP classifies an address that cannot be a VIP (zoned, multicast, loopback,
	// link-local, unspecified or invalid).
	ErrBadVIP = errors.New("not a usable VIP")
	// ErrClaimed is returned by Claim and RemoveStale while a claim is in force.
	ErrClaimed = errors.New("VIPs already claimed")
	// ErrNotClaimed is returned by SetVIPs outside a claim.
	ErrNotClaimed = errors.New("VIPs not claimed")
	// ErrNodeAddress means a VIP is already on the interface with a shorter prefix than a
	// host route (/32, /128): it is one of the node's own addresses, which the owner will
	// neither take over nor ever remove.
	ErrNodeAddress = errors.New("VIP is one of the interface's own addresses")
	// ErrLinkNotFound means the VIP interface does not exist (Links implementations wrap it).
	ErrLinkNotFound = errors.New("interface not found")
	// ErrAddrNotOnInterface means an announcement was asked for an address the interface
	// does not hold.
	ErrAddrNotOnInterface = errors.New("address not on interface")
)

// Interface is what the VIP owner needs to know about the VIP interface. It is looked up
// by name at every step, so an interface that is deleted and re-created (a bond, a VLAN)
// is followed by its new index.
type Interface struct {
	Name         string
	Index        int
	HardwareAddr net.HardwareAddr
}

// netInterface is the form mdlayher/arp and mdlayher/ndp take.
func (i Interface) netInterface() *net.Interface {
	return &net.Interface{Index: i.Index, Name: i.Name, HardwareAddr: i.HardwareAddr}
}

// Links is the slice of rtnetlink the VIP owner uses.
type Links interface {
	// Interface looks an interface up by name; a missing one is ErrLinkNotFound.
	Interface(name string) (Interface, error)
	// AddrReplace puts addr on ifi as a host address (IPv4 /32; IPv6 /128 without
	// duplicate address detection so it is usable at once). Replacing an address that is
	// already there is not an error.
	AddrReplace(ifi Interface, addr netip.Addr) error
	// AddrDel removes the host address addr from ifi. Removing an absent address is not an
	// error.
	AddrDel(ifi Interface, addr netip.Addr) error
	// AddrList lists every address on ifi, both families, with its prefix length.
	AddrList(ifi Interface) ([]netip.Prefix, error)
}

// Announcer sends the unsolicited messages that move a VIP's neighbour entries to this
// node. Each call sends one announcement; the schedule is the VIP owner's.
type Announcer interface {
	// GratuitousARP sends, for an IPv4 addr, one gratuitous ARP request and one gratuitous
	// ARP reply to the Ethernet broadcast address.
	GratuitousARP(ifi Interface, addr netip.Addr) error
	// UnsolicitedNA sends, for an IPv6 addr, one unsolicited neighbour advertisement
	// (Override=1, Solicited=0, target link-layer address option) to ff02::1.
	UnsolicitedNA(ifi Interface, addr netip.Addr) error
}

// hostBits is the prefix length of a host address in addr's family.
func hostBits(addr netip.Addr) int { return addr.BitLen() }

// presence says how addr sits on an interface.
type presence int

const (
	absent      presence = iota
	hostAddress          // as a VIP would be: /32 or /128
	nodeAddress          // with a shorter prefix: the node's own address
)

func lookup(prefixes []netip.Prefix, addr netip.Addr) presence {
	found := absent
	for _, p := range prefixes {
		if p.Addr().Unmap() != addr {
			continue
		}
		if p.Bits() != hostBits(addr) {
			// A node address wins over a host address: never treat it as ours.
			return nodeAddress
		}
		found = hostAddress
	}
	return found
}
