package director

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/raftlvs/raftlvs/director/vip"
	"github.com/raftlvs/raftlvs/fsm"
)

// A VIP-only director: no IPVS, declared VIPs on the interface each names (or the VIP
// interface), services' VIPs on the VIP interface, and nothing left behind.
func TestVIPOnlyDirectorHoldsDeclaredVIPsOnTheirInterfaces(t *testing.T) {
	links := vip.NewFakeLinks()
	links.AddLink("eth0", net.HardwareAddr{2, 0, 0, 0, 0, 1}, netip.MustParsePrefix("10.0.0.2/24"))
	links.AddLink("vlan42", net.HardwareAddr{2, 0, 0, 0, 0, 2}, netip.MustParsePrefix("10.42.0.2/24"))
	c := newFakeCluster()
	fence := vip.NewFakeFence() // one for every interface's owner, as NftFence is
	d, err := New(Config{VIP: vip.Config{Interface: "eth0", Burst: 1, Refresh: -1}, StateDir: t.TempDir()},
		&Kernel{Links: links, Announcer: vip.NewFakeAnnouncer(links), Fence: fence})
	if err != nil {
		t.Fatal(err)
	}
	if !d.VIPOnly() {
		t.Fatal("a director without IPVS is not VIP-only")
	}
	// A VIP left on vlan42 by a crash before this director restarted as a follower.
	links.AddPrefix("vlan42", netip.MustParsePrefix("10.42.0.100/32"))
	c.apply(t, fsm.AddVIP{VIP: fsm.VIP{Prefix: netip.MustParsePrefix("10.0.0.100/24"), Name: "haproxy"}})
	c.apply(t, fsm.AddVIP{VIP: fsm.VIP{Prefix: netip.MustParsePrefix("10.42.0.100/24"), Interface: "vlan42"}})
	c.apply(t, fsm.AddService{Service: fsm.Service{Name: "web", Protocol: fsm.TCP, VIP: netip.MustParseAddr("192.0.2.10"), Port: 80}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.Run(ctx, c)
	eventually(t, "stale VIP removed from vlan42", func() bool { return len(hostAddrs(links, "vlan42")) == 0 })

	c.mu.Lock()
	c.leader = true
	c.mu.Unlock()
	lose := lead(t, d.HoldVIPs, d.RunSyncMaster)
	eth0 := []netip.Addr{netip.MustParseAddr("10.0.0.100"), netip.MustParseAddr("192.0.2.10")}
	vlan42 := []netip.Addr{netip.MustParseAddr("10.42.0.100")}
	eventually(t, "VIPs claimed on both interfaces", func() bool {
		return slices.Equal(hostAddrs(links, "eth0"), eth0) && slices.Equal(hostAddrs(links, "vlan42"), vlan42)
	})
	if st := d.Status(true); len(st.VIPs) != 3 || st.VIPs[2] != (HeldVIP{Addr: vlan42[0], Interface: "vlan42"}) || len(st.Services) != 0 {
		t.Fatalf("status: %+v", st)
	}
	for _, a := range append(slices.Clone(eth0), vlan42...) {
		if !fence.Guarded(a) || !fence.Answers(a) {
			t.Fatalf("%s: guarded %v, answered for %v; want both while held", a, fence.Guarded(a), fence.Answers(a))
		}
	}

	c.apply(t, fsm.RemoveVIP{Addr: vlan42[0]})
	eventually(t, "removed declaration released", func() bool { return len(hostAddrs(links, "vlan42")) == 0 })
	c.apply(t, fsm.AddVIP{VIP: fsm.VIP{Prefix: netip.MustParsePrefix("10.42.0.101/32"), Interface: "vlan42"}})
	eventually(t, "new declaration claimed", func() bool { return len(hostAddrs(links, "vlan42")) == 1 })

	lose()
	if h := append(hostAddrs(links, "eth0"), hostAddrs(links, "vlan42")...); len(h) != 0 {
		t.Fatalf("VIPs still held after leadership loss: %v", h)
	}
	for _, a := range append(eth0, vlan42[0], netip.MustParseAddr("10.42.0.101")) {
		if fence.Guarded(a) {
			t.Fatalf("%s still guarded after leadership loss", a)
		}
	}
}

func hostAddrs(links *vip.FakeLinks, ifname string) []netip.Addr {
	var out []netip.Addr
	for _, p := range links.Prefixes(ifname) {
		if p.IsSingleIP() {
			out = append(out, p.Addr())
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// gate is a VIPGate the test opens and closes.
type gate struct {
	mu      sync.Mutex
	open    bool
	changed chan struct{}
}

func newGate() *gate { return &gate{changed: make(chan struct{})} }

func (g *gate) Verdict() (bool, bool, string, <-chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.open, true, "proxy down", g.changed
}

func (g *gate) set(open bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = open
	close(g.changed)
	g.changed = make(chan struct{})
}

// The tracked checks gate the VIPs, not the duty: with the gate closed the VIP duty is
// in force holding nothing (the duties after it run), claims once it opens, and releases
// when it closes again.
func TestTheVIPDutyHoldsTheVIPsOnlyWhileItsGateIsOpen(t *testing.T) {
	links := vip.NewFakeLinks()
	links.AddLink("eth0", net.HardwareAddr{2, 0, 0, 0, 0, 1}, netip.MustParsePrefix("10.0.0.2/24"))
	g := newGate()
	d, err := New(Config{VIP: vip.Config{Interface: "eth0", Burst: 1, Refresh: -1}, StateDir: t.TempDir(), Gate: g},
		&Kernel{Links: links, Announcer: vip.NewFakeAnnouncer(links)})
	if err != nil {
		t.Fatal(err)
	}
	c := newFakeCluster()
	c.apply(t, fsm.AddVIP{VIP: fsm.VIP{Prefix: netip.MustParsePrefix("10.0.0.100/24")}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.Run(ctx, c)
	c.mu.Lock()
	c.leader = true
	c.mu.Unlock()
	lose := lead(t, d.HoldVIPs) // returns once the duty is in force
	defer lose()
	if h := hostAddrs(links, "eth0"); len(h) != 0 {
		t.Fatalf("VIPs held with the gate closed: %v", h)
	}
	g.set(true)
	eventually(t, "the VIP claimed once the gate opens", func() bool { return len(hostAddrs(links, "eth0")) == 1 })
	g.set(false)
	eventually(t, "the VIP released once the gate closes", func() bool { return len(hostAddrs(links, "eth0")) == 0 })
}
