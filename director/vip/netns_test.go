//go:build linux

package vip

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The lab: a bridge in a namespace of its own, and three namespaces attached to it by
// veth (each end named eth0): directors a and b, and a client. Everything lives in
// namespaces this test creates; closing their handles at the end destroys them and
// every link in them.

type labHost struct {
	name string
	ns   netns.NsHandle
	h    *netlink.Handle
	eth0 netlink.Link
}

func newNamespace(t testing.TB) netns.NsHandle {
	t.Helper()
	errc := make(chan error, 1)
	var ns netns.NsHandle
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		ns, err = netns.New() // switches this thread into it
		if errBack := netns.Set(orig); errBack != nil {
			errc <- fmt.Errorf("switch back: %w", errBack) // the locked thread exits with us
			return
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatalf("new network namespace: %v", err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

func writeSysctl(t testing.TB, ns netns.NsHandle, path, value string) {
	t.Helper()
	err := inNamespace(ns, func() error { return os.WriteFile(path, []byte(value), 0o644) })
	if err != nil {
		t.Fatalf("sysctl %s=%s: %v", path, value, err)
	}
}

type lab struct {
	bridge       netns.NsHandle
	a, b, client *labHost
}

func newLab(t testing.TB) *lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	l := &lab{bridge: newNamespace(t)}
	hb, err := netlink.NewHandleAt(l.bridge)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hb.Close)
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}
	if err := hb.LinkAdd(br); err != nil {
		t.Fatalf("add bridge: %v", err)
	}
	if err := hb.LinkSetUp(br); err != nil {
		t.Fatal(err)
	}
	host := func(name string, octet byte, linkLocal bool) *labHost {
		ns := newNamespace(t)
		veth := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: "p-" + name, MasterIndex: br.Index},
			PeerName:      "eth0",
			PeerNamespace: netlink.NsFd(int(ns)),
		}
		if err := hb.LinkAdd(veth); err != nil {
			t.Fatalf("add veth for %s: %v", name, err)
		}
		if err := hb.LinkSetUp(veth); err != nil {
			t.Fatal(err)
		}
		h, err := netlink.NewHandleAt(ns)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(h.Close)
		eth0, err := h.LinkByName("eth0")
		if err != nil {
			t.Fatal(err)
		}
		// No DAD, so link-local and static addresses are usable as soon as the link is up.
		writeSysctl(t, ns, "/proc/sys/net/ipv6/conf/eth0/accept_dad", "0")
		if !linkLocal {
			writeSysctl(t, ns, "/proc/sys/net/ipv6/conf/eth0/addr_gen_mode", "1")
		}
		for _, p := range []string{fmt.Sprintf("10.99.0.%d/24", octet), fmt.Sprintf("fd00:99::%d/64", octet)} {
			a, err := netlink.ParseAddr(p)
			if err != nil {
				t.Fatal(err)
			}
			a.Flags = unix.IFA_F_NODAD
			if err := h.AddrAdd(eth0, a); err != nil {
				t.Fatalf("%s: add %s: %v", name, p, err)
			}
		}
		if err := h.LinkSetUp(eth0); err != nil {
			t.Fatal(err)
		}
		if eth0, err = h.LinkByName("eth0"); err != nil { // with its MAC
			t.Fatal(err)
		}
		return &labHost{name: name, ns: ns, h: h, eth0: eth0}
	}
	l.a = host("a", 1, true)
	// b has no link-local address, so its NAs take the VIP-sourced path.
	l.b = host("b", 2, false)
	l.client = host("client", 3, true)
	return l
}

func (l *lab) owner(t testing.TB, d *labHost) *Owner {
	t.Helper()
	links, err := NewNetlinkLinks(d.ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(links.Close)
	ann := NewPacketAnnouncer(d.ns)
	t.Cleanup(func() { ann.Close() })
	o, err := NewOwner(Config{
		Interface: "eth0",
		Burst:     1, // the claim's own announcement must be enough on a lossless segment
		Refresh:   -1,
		Logger:    slog.New(slog.DiscardHandler),
	}, links, ann)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Release() })
	return o
}

// poke sends one UDP datagram from the client to vip, so the client resolves it.
func (l *lab) poke(t testing.TB, vip netip.Addr) {
	t.Helper()
	err := inNamespace(l.client.ns, func() error {
		c, err := net.Dial("udp", netip.AddrPortFrom(vip, 9).String())
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("who has the VIP?"))
		return err
	})
	if err != nil {
		t.Fatalf("client to %s: %v", vip, err)
	}
}

// waitNeighbour polls the client's neighbour table until vip maps to want.
func (l *lab) waitNeighbour(t testing.TB, vip netip.Addr, want *labHost) {
	t.Helper()
	family := netlink.FAMILY_V4
	if vip.Is6() {
		family = netlink.FAMILY_V6
	}
	mac := want.eth0.Attrs().HardwareAddr
	var last []netlink.Neigh
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		neighs, err := l.client.h.NeighList(l.client.eth0.Attrs().Index, family)
		if err != nil {
			t.Fatal(err)
		}
		last = neighs
		for _, n := range neighs {
			if ip, _ := netip.AddrFromSlice(n.IP); ip.Unmap() == vip && slices.Equal(n.HardwareAddr, mac) {
				return
			}
		}
	}
	t.Fatalf("client never mapped %s to %s's MAC %s; neighbours: %v", vip, want.name, mac, last)
}

func holds(t testing.TB, d *labHost, vip netip.Addr) bool {
	t.Helper()
	addrs, err := d.h.AddrList(d.eth0, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if ip, _ := netip.AddrFromSlice(a.IP); ip.Unmap() == vip {
			return true
		}
	}
	return false
}

func TestVIPMovesBetweenDirectorsInNamespaces(t *testing.T) {
	for _, tc := range []struct {
		name string
		vip  netip.Addr
	}{
		{"IPv4 by gratuitous ARP", netip.MustParseAddr("10.99.0.100")},
		{"IPv6 by unsolicited NA, from the VIP on b and from the link-local on a", netip.MustParseAddr("fd00:99::100")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLab(t)
			a, b := l.owner(t, l.a), l.owner(t, l.b)
			vips := []netip.Addr{tc.vip}

			if err := a.Claim(t.Context(), vips); err != nil {
				t.Fatalf("a claims: %v", err)
			}
			l.poke(t, tc.vip) // the client resolves the VIP: a's kernel answers
			l.waitNeighbour(t, tc.vip, l.a)

			// Failover: a steps down, b takes over. The client sends nothing meanwhile, so
			// only b's announcement can change its entry.
			if err := a.Release(); err != nil {
				t.Fatalf("a releases: %v", err)
			}
			if holds(t, l.a, tc.vip) {
				t.Fatal("a still holds the VIP after Release")
			}
			if err := b.Claim(t.Context(), vips); err != nil {
				t.Fatalf("b claims: %v", err)
			}
			if !holds(t, l.b, tc.vip) {
				t.Fatal("b does not hold the VIP after Claim")
			}
			l.waitNeighbour(t, tc.vip, l.b)

			// And back, so both directors' announcement paths are exercised.
			if err := b.Release(); err != nil {
				t.Fatalf("b releases: %v", err)
			}
			if err := a.Claim(t.Context(), vips); err != nil {
				t.Fatalf("a claims again: %v", err)
			}
			l.waitNeighbour(t, tc.vip, l.a)
			if holds(t, l.b, tc.vip) {
				t.Fatal("b still holds the VIP")
			}
		})
	}
}

// A director that crashed as leader comes back as a follower with the VIP still on its
// interface; RemoveStale takes it off and leaves the node's own addresses alone.
func TestRemoveStaleInNamespace(t *testing.T) {
	l := newLab(t)
	vip4, vip6 := netip.MustParseAddr("10.99.0.100"), netip.MustParseAddr("fd00:99::100")
	crashed := l.owner(t, l.a)
	if err := crashed.Claim(t.Context(), []netip.Addr{vip4, vip6}); err != nil {
		t.Fatal(err)
	}
	restarted := l.owner(t, l.a)
	node4, node6 := netip.MustParseAddr("10.99.0.1"), netip.MustParseAddr("fd00:99::1")
	removed, err := restarted.RemoveStale([]netip.Addr{vip4, vip6, node4, node6})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []netip.Addr{vip4, vip6}) {
		t.Errorf("removed %v, want the two VIPs", removed)
	}
	for _, v := range []netip.Addr{vip4, vip6} {
		if holds(t, l.a, v) {
			t.Errorf("%s still on a", v)
		}
	}
	for _, v := range []netip.Addr{node4, node6} {
		if !holds(t, l.a, v) {
			t.Errorf("node address %s removed", v)
		}
	}
}

// BenchmarkAnnounce measures one announcement through the real sockets, including the
// namespace switch and the socket opened and closed for each.
func BenchmarkAnnounce(b *testing.B) {
	l := newLab(b)
	links, err := NewNetlinkLinks(l.a.ns)
	if err != nil {
		b.Fatal(err)
	}
	defer links.Close()
	ifi, err := links.Interface("eth0")
	if err != nil {
		b.Fatal(err)
	}
	ann := NewPacketAnnouncer(l.a.ns)
	defer ann.Close()
	for _, tc := range []struct {
		name string
		send func() error
	}{
		{"gratuitous ARP request+reply", func() error { return ann.GratuitousARP(ifi, netip.MustParseAddr("10.99.0.1")) }},
		{"unsolicited NA", func() error { return ann.UnsolicitedNA(ifi, netip.MustParseAddr("fd00:99::1")) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				if err := tc.send(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
