//go:build linux

package vip

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NetlinkLinks is Links over rtnetlink (vishvananda/netlink).
type NetlinkLinks struct {
	h *netlink.Handle
}

// NewNetlinkLinks opens a netlink handle in ns, or in the caller's network namespace when
// ns is not open (netns.None()). The handle keeps its namespace; ns may be closed after.
func NewNetlinkLinks(ns netns.NsHandle) (*NetlinkLinks, error) {
	var h *netlink.Handle
	var err error
	if ns.IsOpen() {
		h, err = netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	} else {
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
	}
	if err != nil {
		return nil, fmt.Errorf("open rtnetlink handle: %w", err)
	}
	return &NetlinkLinks{h: h}, nil
}

// Close releases the netlink socket.
func (l *NetlinkLinks) Close() { l.h.Close() }

// Interface implements Links.
func (l *NetlinkLinks) Interface(name string) (Interface, error) {
	link, err := l.h.LinkByName(name)
	if err != nil {
		if _, ok := errors.AsType[netlink.LinkNotFoundError](err); ok {
			return Interface{}, fmt.Errorf("%s: %w", name, ErrLinkNotFound)
		}
		return Interface{}, fmt.Errorf("look up link %s: %w", name, err)
	}
	a := link.Attrs()
	return Interface{Name: a.Name, Index: a.Index, HardwareAddr: a.HardwareAddr}, nil
}

// hostAddr is addr as a VIP goes on an interface: a host prefix, and for IPv6 without
// duplicate address detection so it is not "tentative" (unusable as a source and unable
// to answer neighbour solicitations) for the first second or so after a failover.
func hostAddr(ifi Interface, addr netip.Addr) *netlink.Addr {
	a := &netlink.Addr{
		IPNet:     &net.IPNet{IP: addr.AsSlice(), Mask: net.CIDRMask(addr.BitLen(), addr.BitLen())},
		LinkIndex: ifi.Index,
	}
	if addr.Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	return a
}

// AddrReplace implements Links.
func (l *NetlinkLinks) AddrReplace(ifi Interface, addr netip.Addr) error {
	if err := l.h.AddrReplace(nil, hostAddr(ifi, addr)); err != nil {
		return linkErr(ifi, err)
	}
	return nil
}

// AddrDel implements Links.
func (l *NetlinkLinks) AddrDel(ifi Interface, addr netip.Addr) error {
	err := l.h.AddrDel(nil, hostAddr(ifi, addr))
	if errors.Is(err, unix.EADDRNOTAVAIL) {
		return nil // already gone
	}
	if err != nil {
		return linkErr(ifi, err)
	}
	return nil
}

// AddrList implements Links.
func (l *NetlinkLinks) AddrList(ifi Interface) ([]netip.Prefix, error) {
	var addrs []netlink.Addr
	var err error
	// A dump interrupted by a concurrent change may be incomplete: ask again.
	for range 3 {
		addrs, err = l.h.AddrList(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: ifi.Index}}, netlink.FAMILY_ALL)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, linkErr(ifi, err)
	}
	prefixes := make([]netip.Prefix, 0, len(addrs))
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		bits, _ := a.Mask.Size()
		prefixes = append(prefixes, netip.PrefixFrom(ip.Unmap(), bits))
	}
	return prefixes, nil
}

// linkErr classifies a vanished interface as ErrLinkNotFound.
func linkErr(ifi Interface, err error) error {
	if errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("%s (index %d): %w: %w", ifi.Name, ifi.Index, ErrLinkNotFound, err)
	}
	return err
}
