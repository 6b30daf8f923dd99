package realserver

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NetlinkHost is the real Host: addresses and links through rtnetlink, sysctls through
// /proc/sys, optionally in another network namespace than the process's.
type NetlinkHost struct {
	h      *netlink.Handle
	ns     netns.NsHandle // target namespace, or -1 for the process's own
	procfs string         // "/proc/sys"
}

// NewNetlinkHost works in the process's network namespace.
func NewNetlinkHost() (*NetlinkHost, error) {
	// Only rtnetlink: a handle for every family fails with EPROTONOSUPPORT on a kernel
	// without xfrm_user or nfnetlink loaded, as stock cloud kernels boot.
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open rtnetlink: %w", err)
	}
	return &NetlinkHost{h: h, ns: netns.None(), procfs: "/proc/sys"}, nil
}

// NewNetlinkHostAt works in the network namespace ns, which the caller keeps open (and
// closes) for the life of the host.
func NewNetlinkHostAt(ns netns.NsHandle) (*NetlinkHost, error) {
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open rtnetlink in %s: %w", ns, err)
	}
	return &NetlinkHost{h: h, ns: ns, procfs: "/proc/sys"}, nil
}

// Close releases the netlink socket.
func (n *NetlinkHost) Close() { n.h.Close() }

// inNS runs fn on an OS thread in the host's namespace. /proc/sys/net resolves to the
// network namespace of the calling thread at open() time, so the file must be opened
// there. The thread is locked and never unlocked: when the goroutine ends the runtime
// destroys it rather than reuse a thread whose namespace was switched.
func (n *NetlinkHost) inNS(fn func() error) error {
	if !n.ns.IsOpen() {
		return fn()
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(n.ns); err != nil {
			done <- fmt.Errorf("enter network namespace %s: %w", n.ns, err)
			return
		}
		done <- fn()
	}()
	return <-done
}

func (n *NetlinkHost) sysctlFile(path string) (string, error) {
	clean := filepath.Clean(path)
	if filepath.IsAbs(clean) || strings.HasPrefix(clean, "..") {
		return "", fmt.Errorf("sysctl path %q is not relative to /proc/sys", path)
	}
	return filepath.Join(n.procfs, clean), nil
}

func (n *NetlinkHost) ReadSysctl(path string) (int, error) {
	file, err := n.sysctlFile(path)
	if err != nil {
		return 0, err
	}
	var v int
	err = n.inNS(func() error {
		b, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		v, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err
	})
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("read %s: %w", path, ErrNoSysctl)
	}
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	return v, nil
}

func (n *NetlinkHost) WriteSysctl(path string, value int) error {
	file, err := n.sysctlFile(path)
	if err != nil {
		return err
	}
	err = n.inNS(func() error {
		// O_TRUNC without O_CREATE: a sysctl that does not exist is an error, not a file.
		f, err := os.OpenFile(file, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			return err
		}
		if _, err := f.WriteString(strconv.Itoa(value) + "\n"); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	})
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("write %s: %w", path, ErrNoSysctl)
	}
	if err != nil {
		return fmt.Errorf("write %s=%d: %w", path, value, err)
	}
	return nil
}

func (n *NetlinkHost) link(name string) (netlink.Link, error) {
	l, err := n.h.LinkByName(name)
	if _, ok := errors.AsType[netlink.LinkNotFoundError](err); ok {
		return nil, fmt.Errorf("link %s: %w", name, ErrNoLink)
	}
	if err != nil {
		return nil, fmt.Errorf("link %s: %w", name, err)
	}
	return l, nil
}

// addrList retries a dump the kernel interrupted because the table changed under it.
func (n *NetlinkHost) addrList(l netlink.Link) ([]netlink.Addr, error) {
	var err error
	for range 3 {
		var addrs []netlink.Addr
		addrs, err = n.h.AddrList(l, netlink.FAMILY_ALL)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return addrs, err
		}
	}
	return nil, err
}

func (n *NetlinkHost) Addrs(link string) ([]Address, error) {
	l, err := n.link(link)
	if err != nil {
		return nil, err
	}
	nas, err := n.addrList(l)
	if err != nil {
		return nil, fmt.Errorf("list addresses of %s: %w", link, err)
	}
	out := make([]Address, 0, len(nas))
	for _, na := range nas {
		ip, ok := netip.AddrFromSlice(na.IP)
		if !ok {
			continue
		}
		ones, _ := na.Mask.Size()
		out = append(out, Address{
			Prefix:    netip.PrefixFrom(ip.Unmap(), ones),
			HostScope: na.Scope == unix.RT_SCOPE_HOST,
			NoDAD:     na.Flags&unix.IFA_F_NODAD != 0,
			Label:     na.Label,
		})
	}
	return out, nil
}

func toNetlink(a Address) *netlink.Addr {
	na := &netlink.Addr{
		IPNet: &net.IPNet{IP: a.Prefix.Addr().AsSlice(), Mask: net.CIDRMask(a.Prefix.Bits(), a.Prefix.Addr().BitLen())},
		Scope: unix.RT_SCOPE_UNIVERSE,
	}
	if a.HostScope {
		na.Scope = unix.RT_SCOPE_HOST
	}
	if a.NoDAD {
		na.Flags |= unix.IFA_F_NODAD
	}
	if a.Prefix.Addr().Is4() {
		na.Label = a.Label
	}
	return na
}

func (n *NetlinkHost) AddAddr(link string, a Address) error {
	l, err := n.link(link)
	if err != nil {
		return err
	}
	// Replace, not add: adding an address that is there already fails with EEXIST.
	if err := n.h.AddrReplace(l, toNetlink(a)); err != nil {
		return fmt.Errorf("add %s to %s: %w", a, link, err)
	}
	return nil
}

func (n *NetlinkHost) DelAddr(link string, a Address) error {
	l, err := n.link(link)
	if err != nil {
		return err
	}
	if err := n.h.AddrDel(l, toNetlink(a)); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return fmt.Errorf("delete %s from %s: %w", a.Prefix, link, err)
	}
	return nil
}

func (n *NetlinkHost) LinkOf(addr netip.Addr) (string, error) {
	nas, err := n.addrList(nil)
	if err != nil {
		return "", fmt.Errorf("list addresses: %w", err)
	}
	for _, na := range nas {
		if ip, ok := netip.AddrFromSlice(na.IP); ok && ip.Unmap() == addr.Unmap() {
			l, err := n.h.LinkByIndex(na.LinkIndex)
			if err != nil {
				return "", fmt.Errorf("link of %s: %w", addr, err)
			}
			return l.Attrs().Name, nil
		}
	}
	return "", fmt.Errorf("no link holds %s: %w", addr, ErrNoLink)
}

func (n *NetlinkHost) EnsureIPIP() (IPIPChange, error) {
	change := IPIPUnchanged
	l, err := n.link(IPIPLink)
	if errors.Is(err, ErrNoLink) {
		// Without the ipip module loaded, this request autoloads it, and the module creates
		// tunl0 itself in every namespace (unless net.core.fb_tunnels_only_for_init_net),
		// so our own request then fails with EEXIST: that is success, look it up again.
		err = n.h.LinkAdd(&netlink.Iptun{LinkAttrs: netlink.LinkAttrs{Name: IPIPLink}})
		switch {
		case err == nil:
			change = IPIPCreated
		case errors.Is(err, unix.EEXIST):
		case errors.Is(err, unix.EOPNOTSUPP):
			return change, fmt.Errorf("create %s: %w (%w)", IPIPLink, ErrNoIPIP, err)
		default:
			return change, fmt.Errorf("create %s: %w", IPIPLink, err)
		}
		l, err = n.link(IPIPLink)
	}
	if err != nil {
		return change, err
	}
	if l.Type() != "ipip" {
		return change, fmt.Errorf("%s is a %s device, not ipip", IPIPLink, l.Type())
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		if err := n.h.LinkSetUp(l); err != nil {
			return change, fmt.Errorf("bring %s up: %w", IPIPLink, err)
		}
		if change == IPIPUnchanged {
			change = IPIPBroughtUp
		}
	}
	return change, nil
}

func (n *NetlinkHost) ReleaseIPIP(remove bool) error {
	l, err := n.link(IPIPLink)
	if errors.Is(err, ErrNoLink) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := n.h.LinkSetDown(l); err != nil {
		return fmt.Errorf("bring %s down: %w", IPIPLink, err)
	}
	if !remove {
		return nil
	}
	// The kernel ignores a delete of the fallback device; it stays, down.
	if err := n.h.LinkDel(l); err != nil {
		return fmt.Errorf("delete %s: %w", IPIPLink, err)
	}
	return nil
}

func (n *NetlinkHost) Route(dst netip.Prefix) (Route, bool, error) {
	family := netlink.FAMILY_V4
	if dst.Addr().Is6() {
		family = netlink.FAMILY_V6
	}
	// Filtered by table only: the library reports a default route with a nil Dst, which
	// its own destination filter never matches.
	routes, err := n.h.RouteListFiltered(family, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return Route{}, false, fmt.Errorf("list routes: %w", err)
	}
	for _, r := range routes {
		if r.Type != unix.RTN_UNICAST || r.Priority != 0 || routeDst(r.Dst, dst.Addr().BitLen()) != dst {
			continue
		}
		if len(r.MultiPath) > 0 {
			return Route{}, false, fmt.Errorf("route to %s is multipath: %w", dst, ErrUnsupported)
		}
		out := Route{Dst: dst}
		if gw, ok := netip.AddrFromSlice(r.Gw); ok {
			out.Via = gw.Unmap()
		}
		if l, err := n.h.LinkByIndex(r.LinkIndex); err == nil {
			out.Link = l.Attrs().Name
		}
		return out, true, nil
	}
	return Route{}, false, nil
}

func routeDst(ipn *net.IPNet, bits int) netip.Prefix {
	if ipn == nil {
		if bits == 32 {
			return netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		}
		return netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	}
	ip, _ := netip.AddrFromSlice(ipn.IP)
	ones, _ := ipn.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), ones)
}

func (n *NetlinkHost) toNetlinkRoute(r Route) (*netlink.Route, error) {
	nr := &netlink.Route{
		Dst:   &net.IPNet{IP: r.Dst.Addr().AsSlice(), Mask: net.CIDRMask(r.Dst.Bits(), r.Dst.Addr().BitLen())},
		Gw:    r.Via.AsSlice(),
		Table: unix.RT_TABLE_MAIN,
	}
	if r.Link != "" {
		l, err := n.link(r.Link)
		if err != nil {
			return nil, err
		}
		nr.LinkIndex = l.Attrs().Index
	}
	return nr, nil
}

func (n *NetlinkHost) ReplaceRoute(r Route) error {
	nr, err := n.toNetlinkRoute(r)
	if err != nil {
		return fmt.Errorf("route %s: %w", r, err)
	}
	if err := n.h.RouteReplace(nr); err != nil {
		return fmt.Errorf("replace route %s: %w", r, err)
	}
	return nil
}

func (n *NetlinkHost) DelRoute(r Route) error {
	nr, err := n.toNetlinkRoute(r)
	if errors.Is(err, ErrNoLink) {
		return nil // the link took its routes along
	}
	if err != nil {
		return fmt.Errorf("route %s: %w", r, err)
	}
	if err := n.h.RouteDel(nr); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("delete route %s: %w", r, err)
	}
	return nil
}

var _ Host = (*NetlinkHost)(nil)
