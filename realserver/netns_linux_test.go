package realserver

import (
	"errors"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// testNS creates a fresh, unnamed network namespace with lo up and a veth pair rs0/rs0p
// (rs0 holds agentAddr), without ever switching the test's own threads into it. The
// namespace disappears when its last handle is closed at the end of the test.
func testNS(t testing.TB, agentAddr netip.Prefix) netns.NsHandle {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	nsc := make(chan netns.NsHandle, 1)
	errc := make(chan error, 1)
	go func() {
		// This thread is switched into the new namespace and never unlocked, so it dies
		// with the goroutine instead of carrying the namespace into other work.
		runtime.LockOSThread()
		ns, err := netns.New()
		if err != nil {
			errc <- err
			return
		}
		nsc <- ns
	}()
	var ns netns.NsHandle
	select {
	case err := <-errc:
		t.Fatalf("create network namespace: %v", err)
	case ns = <-nsc:
	}
	t.Cleanup(func() { ns.Close() })

	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatalf("netlink handle in namespace: %v", err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "rs0"}, PeerName: "rs0p"}
	if err := h.LinkAdd(veth); err != nil {
		t.Fatalf("add veth: %v", err)
	}
	rs0, err := h.LinkByName("rs0")
	if err != nil {
		t.Fatal(err)
	}
	ipnet := &net.IPNet{IP: agentAddr.Addr().AsSlice(), Mask: net.CIDRMask(agentAddr.Bits(), agentAddr.Addr().BitLen())}
	if err := h.AddrAdd(rs0, &netlink.Addr{IPNet: ipnet}); err != nil {
		t.Fatalf("address rs0: %v", err)
	}
	if err := h.LinkSetUp(rs0); err != nil {
		t.Fatal(err)
	}
	return ns
}

// readProcSys reads sysctl files on a thread inside ns: the oracle of these tests, written
// apart from NetlinkHost so that it does not check the code with itself.
func readProcSys(t *testing.T, ns netns.NsHandle, paths ...string) map[string]int {
	t.Helper()
	type result struct {
		vals map[string]int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if ns.IsOpen() {
			if err := netns.Set(ns); err != nil {
				done <- result{err: err}
				return
			}
		}
		vals := map[string]int{}
		for _, p := range paths {
			b, err := os.ReadFile(filepath.Join("/proc/sys", p))
			if err != nil {
				done <- result{err: err}
				return
			}
			v, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				done <- result{err: err}
				return
			}
			vals[p] = v
		}
		done <- result{vals: vals}
	}()
	r := <-done
	if r.err != nil {
		t.Fatalf("read sysctls: %v", r.err)
	}
	return r.vals
}

func confPaths(links ...string) []string {
	var out []string
	for _, l := range links {
		for _, k := range []string{"arp_ignore", "arp_announce", "rp_filter", "arp_filter", "accept_local"} {
			out = append(out, confPath(l, k))
		}
	}
	return out
}

// nsSnapshot is the state of a namespace the agent may touch: every link's addresses
// and the ARP and reverse-path sysctls of all, default and every link.
type nsSnapshot struct {
	addrs   map[string][]string
	routes  []string // every route of the main table
	sysctls map[string]int
}

func snapshot(t *testing.T, ns netns.NsHandle) nsSnapshot {
	t.Helper()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	s := nsSnapshot{addrs: map[string][]string{}}
	names := []string{"all", "default"}
	for _, l := range links {
		name := l.Attrs().Name
		names = append(names, name)
		as, err := h.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, a := range as {
			got = append(got, a.IPNet.String()+" scope "+strconv.Itoa(a.Scope)+" label "+a.Label)
		}
		slices.Sort(got)
		s.addrs[name] = got
	}
	routes, err := h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		s.routes = append(s.routes, r.String())
	}
	slices.Sort(s.routes)
	s.sysctls = readProcSys(t, ns, confPaths(names...)...)
	return s
}

func (s nsSnapshot) equal(o nsSnapshot) bool {
	return maps.EqualFunc(s.addrs, o.addrs, slices.Equal) && slices.Equal(s.routes, o.routes) && maps.Equal(s.sysctls, o.sysctls)
}

// rootSysctls are the root namespace's values the agent would touch; the tests must leave
// them alone.
var rootSysctlPaths = confPaths("all", "default", "lo")

func TestNetlinkHostConvergesDRInANamespaceAndUndoRestoresIt(t *testing.T) {
	ns := testNS(t, netip.MustParsePrefix("192.0.2.10/24"))
	rootBefore := readProcSys(t, netns.None(), rootSysctlPaths...)
	// An operator's choices the agent must keep: a stricter arp_ignore on rs0.
	writeProcSys(t, ns, confPath("rs0", "arp_ignore"), 2)
	before := snapshot(t, ns)

	host, err := NewNetlinkHostAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	iface, err := host.LinkOf(netip.MustParseAddr("192.0.2.10"))
	if err != nil || iface != "rs0" {
		t.Fatalf("LinkOf = %q, %v; want rs0", iface, err)
	}
	c, err := NewConfigurator(host, ConfiguratorConfig{Interface: iface, StateFile: statePath(t), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Converge([]Binding{dr("192.0.2.100"), dr("2001:db8::100")}); err != nil {
		t.Fatal(err)
	}

	got := readProcSys(t, ns, confPaths("all", "rs0")...)
	for path, want := range map[string]int{
		confPath("all", "arp_ignore"): 1, confPath("all", "arp_announce"): 2,
		confPath("rs0", "arp_ignore"): 2, confPath("rs0", "arp_announce"): 2,
	} {
		if got[path] != want {
			t.Errorf("%s = %d inside the namespace, want %d", path, got[path], want)
		}
	}
	lo := snapshot(t, ns).addrs["lo"]
	for _, want := range []string{"192.0.2.100/32 scope 254 label lo:raftlvs", "2001:db8::100/128 scope 0 label "} {
		if !slices.Contains(lo, want) {
			t.Errorf("lo has %q, want %q among them", lo, want)
		}
	}
	// A second converge finds everything in place.
	if err := c.Converge([]Binding{dr("192.0.2.100"), dr("2001:db8::100")}); err != nil {
		t.Fatal(err)
	}

	if err := c.Undo(); err != nil {
		t.Fatal(err)
	}
	if after := snapshot(t, ns); !after.equal(before) {
		t.Errorf("undo did not restore the namespace:\nbefore %v\nafter  %v", before, after)
	}
	if rootAfter := readProcSys(t, netns.None(), rootSysctlPaths...); !maps.Equal(rootAfter, rootBefore) {
		t.Errorf("root namespace sysctls changed: %v, were %v", rootAfter, rootBefore)
	}
}

func TestNetlinkHostReportsErrNoIPIPOnAKernelWithoutIt(t *testing.T) {
	ns := testNS(t, netip.MustParsePrefix("192.0.2.10/24"))
	host, err := NewNetlinkHostAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	if _, err := host.LinkOf(netip.MustParseAddr("192.0.2.10")); err != nil {
		t.Fatal(err)
	}
	if hasIPIP(t, ns) {
		t.Skip("this kernel has IPIP: the lab test covers TUN")
	}
	before := snapshot(t, ns)
	c, err := NewConfigurator(host, ConfiguratorConfig{Interface: "rs0", StateFile: statePath(t), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Converge([]Binding{tun("192.0.2.100")})
	if !errors.Is(err, ErrNoIPIP) {
		t.Fatalf("want ErrNoIPIP, got %v", err)
	}
	t.Logf("converge TUN here: %v", err)
	if err := c.Undo(); err != nil {
		t.Fatal(err)
	}
	if after := snapshot(t, ns); !after.equal(before) {
		t.Errorf("a failed TUN converge and its undo changed the namespace:\nbefore %v\nafter  %v", before, after)
	}
}

func TestNetlinkHostNATRouteReplacesTheDefaultRouteAndUndoRestoresIt(t *testing.T) {
	ns := testNS(t, netip.MustParsePrefix("192.0.2.10/24"))
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	rs0, err := h.LinkByName("rs0")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.RouteAdd(&netlink.Route{LinkIndex: rs0.Attrs().Index, Gw: net.ParseIP("192.0.2.1")}); err != nil {
		t.Fatalf("operator's default route: %v", err)
	}
	before := snapshot(t, ns)

	host, err := NewNetlinkHostAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	c, err := NewConfigurator(host, ConfiguratorConfig{Interface: "rs0", StateFile: statePath(t), NATRoute: Route{Via: netip.MustParseAddr("192.0.2.2")}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Converge([]Binding{nat("192.0.2.100")}); err != nil {
		t.Fatal(err)
	}
	got, ok, err := host.Route(netip.MustParsePrefix("0.0.0.0/0"))
	if err != nil || !ok || got.Via != netip.MustParseAddr("192.0.2.2") || got.Link != "rs0" {
		t.Fatalf("default route = %v, %v, %v; want via 192.0.2.2 dev rs0", got, ok, err)
	}
	if err := c.Undo(); err != nil {
		t.Fatal(err)
	}
	if after := snapshot(t, ns); !after.equal(before) {
		t.Errorf("undo did not restore the namespace:\nbefore %v\nafter  %v", before, after)
	}
}

func TestNetlinkHostSysctlErrors(t *testing.T) {
	ns := testNS(t, netip.MustParsePrefix("192.0.2.10/24"))
	host, err := NewNetlinkHostAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	if _, err := host.ReadSysctl(confPath("nosuch0", "arp_ignore")); !errors.Is(err, ErrNoSysctl) {
		t.Errorf("read of a missing interface's sysctl: want ErrNoSysctl, got %v", err)
	}
	if err := host.WriteSysctl(confPath("nosuch0", "arp_ignore"), 1); !errors.Is(err, ErrNoSysctl) {
		t.Errorf("write of a missing interface's sysctl: want ErrNoSysctl, got %v", err)
	}
	if _, err := host.ReadSysctl("../../etc/passwd"); err == nil {
		t.Error("read a path outside /proc/sys")
	}
	if _, err := host.Addrs("nosuch0"); !errors.Is(err, ErrNoLink) {
		t.Errorf("addresses of a missing link: want ErrNoLink, got %v", err)
	}
}

// hasIPIP reports whether the kernel can make IPIP devices, asking in ns.
func hasIPIP(t *testing.T, ns netns.NsHandle) bool {
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, err := h.LinkByName(IPIPLink); err == nil {
		return true
	}
	probe := &netlink.Iptun{LinkAttrs: netlink.LinkAttrs{Name: "ipipprobe0"}}
	if err := h.LinkAdd(probe); err != nil {
		return false
	}
	h.LinkDel(probe)
	return true
}

func writeProcSys(t *testing.T, ns netns.NsHandle, path string, v int) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := netns.Set(ns); err != nil {
			done <- err
			return
		}
		done <- os.WriteFile(filepath.Join("/proc/sys", path), []byte(strconv.Itoa(v)), 0)
	}()
	if err := <-done; err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}
