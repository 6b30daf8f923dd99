//go:build linux

package vip

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/arp"
	"github.com/mdlayher/ndp"
)

// The fence in the kernel, in namespaces this test creates: a director whose leadership
// can no longer be verified (a frozen process renews nothing either) stops being
// answered for by its kernel within the lease, with the VIP still on its interface.

func newTestFence(t testing.TB, d *labHost) *NftFence {
	t.Helper()
	f, err := NewNftFence(d.ns, slog.New(slog.DiscardHandler))
	if errors.Is(err, ErrNoFence) {
		t.Skipf("no nf_tables here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// freezable stands in for raft's VerifyLeader: instant, or, once frozen, never answering
// (the round times out at the lease).
type freezable struct{ frozen atomic.Bool }

func (f *freezable) verify(ctx context.Context) error {
	if f.frozen.Load() {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (l *lab) fencedOwner(t *testing.T, d *labHost, fence Fence, v *freezable) *Owner {
	t.Helper()
	links, err := NewNetlinkLinks(d.ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(links.Close)
	ann := NewPacketAnnouncer(d.ns)
	t.Cleanup(func() { ann.Close() })
	o, err := NewOwner(Config{Interface: "eth0", Burst: 1, Refresh: -1, Verify: v.verify, Lease: DefaultLease,
		Fence: fence, Logger: slog.New(slog.DiscardHandler)}, links, ann)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Release() })
	return o
}

// prober asks, from the client, who answers for a VIP: an ARP request (IPv4) or a
// neighbour solicitation (IPv6), and whether an answer comes within window.
type prober struct {
	t   *testing.T
	vip netip.Addr
	arp *arp.Client
	ndp *ndp.Conn
	ifi *net.Interface
}

func (l *lab) prober(t *testing.T, vip netip.Addr) *prober {
	t.Helper()
	p := &prober{t: t, vip: vip}
	// The client's link-local address may not be usable for a moment after its link
	// came up.
	err := inNamespace(l.client.ns, p.open)
	for deadline := time.Now().Add(5 * time.Second); err != nil && time.Now().Before(deadline); err = inNamespace(l.client.ns, p.open) {
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("prober: %v", err)
	}
	t.Cleanup(func() {
		if p.arp != nil {
			p.arp.Close()
		}
		if p.ndp != nil {
			p.ndp.Close()
		}
	})
	return p
}

func (p *prober) open() error {
	ifi, err := net.InterfaceByName("eth0")
	if err != nil {
		return err
	}
	p.ifi = ifi
	if p.vip.Is4() {
		p.arp, err = arp.Dial(ifi)
		return err
	}
	zoned := *ifi
	zoned.Name = strconv.Itoa(ifi.Index) // see sendNA: zone names ignore namespaces
	p.ndp, _, err = ndp.Listen(&zoned, ndp.LinkLocal)
	return err
}

// waitAnswered probes until want answers: a lab's links take a moment to come up.
func (p *prober) waitAnswered(want net.HardwareAddr) {
	p.t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !p.answered(want, 50*time.Millisecond); {
		if time.Now().After(deadline) {
			p.t.Fatalf("%s never answered for %s", want, p.vip)
		}
	}
}

// answered sends one request and reports whether want answered within window.
func (p *prober) answered(want net.HardwareAddr, window time.Duration) bool {
	p.t.Helper()
	deadline := time.Now().Add(window)
	if p.arp != nil {
		if err := p.arp.Request(p.vip); err != nil {
			p.t.Fatal(err)
		}
		for {
			p.arp.SetReadDeadline(deadline)
			pkt, _, err := p.arp.Read()
			if err != nil {
				return false
			}
			if pkt.Operation == arp.OperationReply && pkt.SenderIP == p.vip && pkt.SenderHardwareAddr.String() == want.String() {
				return true
			}
		}
	}
	snm, err := ndp.SolicitedNodeMulticast(p.vip)
	if err != nil {
		p.t.Fatal(err)
	}
	ns := &ndp.NeighborSolicitation{TargetAddress: p.vip,
		Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: p.ifi.HardwareAddr}}}
	if err := p.ndp.WriteTo(ns, nil, snm.WithZone(strconv.Itoa(p.ifi.Index))); err != nil {
		p.t.Fatal(err)
	}
	for {
		p.ndp.SetReadDeadline(deadline)
		msg, _, _, err := p.ndp.ReadFrom()
		if err != nil {
			return false
		}
		na, ok := msg.(*ndp.NeighborAdvertisement)
		if !ok || na.TargetAddress != p.vip {
			continue
		}
		for _, o := range na.Options {
			if lla, ok := o.(*ndp.LinkLayerAddress); ok && lla.Addr.String() == want.String() {
				return true
			}
		}
	}
}

func TestNftFenceSilencesAnUnverifiedLeaderInNamespace(t *testing.T) {
	for _, vip := range []netip.Addr{netip.MustParseAddr("10.99.0.100"), netip.MustParseAddr("fd00:99::100")} {
		t.Run(vip.String(), func(t *testing.T) {
			l := newLab(t)
			fence := newTestFence(t, l.a)
			v := &freezable{}
			o := l.fencedOwner(t, l.a, fence, v)
			if err := o.Claim(t.Context(), []netip.Addr{vip}); err != nil {
				t.Fatal(err)
			}
			p := l.prober(t, vip)
			mac := l.a.eth0.Attrs().HardwareAddr
			const window = 50 * time.Millisecond
			p.waitAnswered(mac)
			// Healthy: renewed every lease/3, so answered every time; a lapse would cost
			// several probes in a row, a lost probe one.
			missed := 0
			for i := range 20 {
				if p.answered(mac, window) {
					missed = 0
				} else if missed++; missed > 1 {
					t.Fatalf("probes %d and %d: a healthy leader's VIP was not answered for", i-1, i)
				}
			}
			v.frozen.Store(true)
			// Probed for 1.5 s: the last answer must come within 1 s (the lease, 150 ms, and
			// a generous margin), and the rest be silence. A lost probe does not end it.
			frozen := time.Now()
			lastAnswered := frozen // when the last request that was answered went out
			for time.Since(frozen) < 1500*time.Millisecond {
				sent := time.Now()
				if p.answered(mac, window) {
					lastAnswered = sent
				}
			}
			t.Logf("answered for %v after verification stopped (lease %v, probe window %v)",
				lastAnswered.Sub(frozen), DefaultLease, window)
			if lastAnswered.Sub(frozen) > time.Second {
				t.Fatalf("answered %v after leadership stopped being verified", lastAnswered.Sub(frozen))
			}
			if !holds(t, l.a, vip) {
				t.Fatal("the VIP left the interface: the fence should silence it, not remove it")
			}
			v.frozen.Store(false)
			resumed := time.Now()
			for !p.answered(mac, window) {
				if time.Since(resumed) > time.Second {
					t.Fatal("not answered again within a second of verifying again")
				}
			}
			if err := o.Release(); err != nil {
				t.Fatal(err)
			}
			if tables := fenceTables(t, l.a); tables != 0 {
				t.Fatalf("%d fence tables after the last VIP went, want none", tables)
			}
		})
	}
}

// A director killed while it held a VIP leaves the address and its tables behind: the
// kernel goes quiet when the lease runs out, stays quiet across the restart (the new
// fence keeps the old one's guards), and RemoveStale takes the address off and the
// tables with it.
func TestNftFenceKeepsAKilledDirectorsVIPSilentInNamespace(t *testing.T) {
	l := newLab(t)
	vip := netip.MustParseAddr("10.99.0.100")
	v := &freezable{}
	killed := l.fencedOwner(t, l.a, newTestFence(t, l.a), v)
	if err := killed.Claim(t.Context(), []netip.Addr{vip}); err != nil {
		t.Fatal(err)
	}
	p := l.prober(t, vip)
	mac := l.a.eth0.Attrs().HardwareAddr
	p.waitAnswered(mac)
	v.frozen.Store(true) // kill -9: nothing renews, nothing releases
	time.Sleep(2 * DefaultLease)
	if p.answered(mac, 50*time.Millisecond) {
		t.Fatal("answered after the lease ran out")
	}
	restarted := newTestFence(t, l.a)
	if tables := fenceTables(t, l.a); tables != 2 {
		t.Fatalf("%d fence tables after the restart, want the old guards kept (2)", tables)
	}
	if !holds(t, l.a, vip) || p.answered(mac, 50*time.Millisecond) {
		t.Fatal("the stale VIP answered after the restart, or was gone")
	}
	follower := l.fencedOwner(t, l.a, restarted, &freezable{})
	if removed, err := follower.RemoveStale([]netip.Addr{vip}); err != nil || len(removed) != 1 {
		t.Fatalf("RemoveStale: %v, %v; want the VIP removed", removed, err)
	}
	if tables := fenceTables(t, l.a); tables != 0 {
		t.Fatalf("%d fence tables after RemoveStale, want none", tables)
	}
}

// A ruleset flushed behind the fence's back (a firewall reload) is put back at the next
// renewal.
func TestNftFenceSurvivesAFlushedRulesetInNamespace(t *testing.T) {
	l := newLab(t)
	fence := newTestFence(t, l.a)
	addr := netip.MustParseAddr("10.99.0.101")
	if err := fence.Guard(addr, time.Hour); err != nil {
		t.Fatal(err)
	}
	conn := nftConn(t, l.a)
	conn.FlushRuleset()
	if err := conn.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := fence.Renew([]netip.Addr{addr}, time.Hour); err != nil {
		t.Fatalf("renew after a flushed ruleset: %v", err)
	}
	if tables := fenceTables(t, l.a); tables != 2 {
		t.Fatalf("%d fence tables after the renewal, want them back", tables)
	}
}

func nftConn(t testing.TB, d *labHost) *nftables.Conn {
	t.Helper()
	conn, err := nftables.New(nftables.WithNetNSFd(int(d.ns)))
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

func fenceTables(t *testing.T, d *labHost) int {
	t.Helper()
	tables, err := nftConn(t, d).ListTables()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, tb := range tables {
		if tb.Name == FenceTable {
			n++
		}
	}
	return n
}

// BenchmarkNftFenceRenew measures one renewal (a batch that replaces the live sets), which
// a leader makes every lease/3 per interface.
func BenchmarkNftFenceRenew(b *testing.B) {
	l := newLab(b)
	f, err := NewNftFence(l.a.ns, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Skip(err)
	}
	defer f.Close()
	addrs := []netip.Addr{netip.MustParseAddr("10.99.0.100"), netip.MustParseAddr("10.99.0.101"), netip.MustParseAddr("fd00:99::100")}
	for _, a := range addrs {
		if err := f.Guard(a, time.Second); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		if err := f.Renew(addrs, DefaultLease); err != nil {
			b.Fatal(err)
		}
	}
}
