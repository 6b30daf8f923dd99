//go:build linux

package daemon

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/director"
	"github.com/raftlvs/raftlvs/director/track"
	"github.com/raftlvs/raftlvs/director/vip"
	"github.com/raftlvs/raftlvs/internal/netlab"
)

// VIP-only directors with tracked checks, in this process (Raft, gossip and the API on
// 127.0.0.1), each holding VIPs on the eth0 of a namespace of its own; the namespaces and
// a client share a bridge. No IPVS anywhere: this kernel has none. The client's
// neighbour table is the oracle of who holds the VIP.

type vipOnlyDirector struct {
	id    string
	d     *Director
	host  *netlab.Host
	check string // the file whose presence the tracked check wants
}

func startVIPOnlyDirector(t *testing.T, id string, host *netlab.Host, key []byte, join string) *vipOnlyDirector {
	t.Helper()
	ns, err := netns.GetFromName(host.NS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	links, err := vip.NewNetlinkLinks(ns)
	if err != nil {
		t.Fatal(err)
	}
	ann := vip.NewPacketAnnouncer(ns)
	vd := &vipOnlyDirector{id: id, host: host, check: filepath.Join(t.TempDir(), "proxy-is-up")}
	if err := os.WriteFile(vd.check, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	chk, err := track.Parse("exec:test -e "+vd.check, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{
		ID: id, DataDir: t.TempDir(),
		RaftBind: "127.0.0.1:0", APIBind: "127.0.0.1:0", GossipBind: "127.0.0.1:0", GossipKey: key,
		Bootstrap: join == "",
		// raft's own (slower) timings: the race detector on two shared cores stalls.
		HeartbeatTimeout: time.Second, ElectionTimeout: time.Second, LeaderLeaseTimeout: 500 * time.Millisecond,
		VIPOnly: true,
		// This test is about VIPs and tracked checks; security_test.go is about TLS.
		Security: Security{Insecure: true},
		// One announcement per claim: the client must follow each move at once.
		VIP:    vip.Config{Interface: "eth0", Burst: 1, Refresh: -1},
		Track:  &track.Config{Checks: []track.Check{chk}, Interval: 100 * time.Millisecond},
		Kernel: &director.Kernel{Links: links, Announcer: ann},
		Logger: testLog,
	}
	if join != "" {
		opts.Join = []string{join}
	}
	d, err := New(opts)
	if err != nil {
		links.Close()
		ann.Close()
		t.Fatal(err)
	}
	vd.d = d
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := d.Run(ctx); err != nil {
			t.Errorf("director %s: %v", id, err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return vd
}

func (vd *vipOnlyDirector) holds(t *testing.T, addr netip.Addr) bool {
	t.Helper()
	ok, err := vd.host.Holds(addr)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func (vd *vipOnlyDirector) setCheck(t *testing.T, pass bool) {
	t.Helper()
	var err error
	if pass {
		err = os.WriteFile(vd.check, nil, 0o600)
	} else {
		err = os.Remove(vd.check)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestVIPOnlyDirectorsFollowTrackedChecks(t *testing.T) {
	if err := netlab.Available(); err != nil {
		t.Skip(err)
	}
	vipAddr := netip.MustParseAddr("10.99.0.100")
	lab, err := netlab.New("rlvo",
		netlab.HostSpec{Name: "c", Addr: netip.MustParsePrefix("10.99.0.9/24")},
		netlab.HostSpec{Name: "d1", Addr: netip.MustParsePrefix("10.99.0.1/24")},
		netlab.HostSpec{Name: "d2", Addr: netip.MustParsePrefix("10.99.0.2/24")},
		netlab.HostSpec{Name: "d3", Addr: netip.MustParsePrefix("10.99.0.3/24")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Close() })
	client := lab.Host("c")

	key := []byte("0123456789abcdef0123456789abcdef")
	d1 := startVIPOnlyDirector(t, "d1", lab.Host("d1"), key, "")
	waitUntil(t, "d1 leads", 20*time.Second, d1.d.Node().IsLeader)
	d2 := startVIPOnlyDirector(t, "d2", lab.Host("d2"), key, d1.d.APIAddr())
	d3 := startVIPOnlyDirector(t, "d3", lab.Host("d3"), key, d1.d.APIAddr())
	all := []*vipOnlyDirector{d1, d2, d3}
	for _, d := range all {
		waitUntil(t, d.id+" a voter that knows its leader", 30*time.Second, func() bool {
			st := d.d.Node().Status()
			return st.LeaderID != "" && len(st.Voters) == 3
		})
	}
	// Declared through any director's API, as an operator would.
	if _, err := api.NewClient(d3.d.APIAddr()).AddVIP(context.Background(), api.VIPRequest{Addr: "10.99.0.100/24", Name: "haproxy"}); err != nil {
		t.Fatalf("declare the VIP: %v", err)
	}

	// holder waits until exactly one director, one of among, leads and holds the VIP,
	// and the client's neighbour entry for the VIP names that director's MAC.
	holder := func(what string, among ...*vipOnlyDirector) *vipOnlyDirector {
		t.Helper()
		var got *vipOnlyDirector
		waitUntil(t, what, 30*time.Second, func() bool {
			got = nil
			for _, d := range all {
				if d.holds(t, vipAddr) {
					if got != nil {
						return false // two at once: wait for the release
					}
					got = d
				}
			}
			if got == nil || !got.d.Node().IsLeader() || !slices.Contains(among, got) {
				return false
			}
			client.Poke(vipAddr)
			mac, _, err := client.Neighbour(vipAddr)
			return err == nil && bytes.Equal(mac, got.host.MAC)
		})
		return got
	}
	first := holder("the leader holds the VIP and the client reaches it", all...)
	if st := first.d.plane.Status(false); len(st.VIPs) != 1 || st.VIPs[0].Interface != "eth0" || !first.d.plane.VIPOnly() {
		t.Fatalf("status of a VIP-only leader: %+v", st)
	}

	// The leader's proxy dies: its tracked check fails, it hands leadership to a director
	// whose check passes, and the VIP follows; the client's entry moves with the GARP.
	first.setCheck(t, false)
	rest := others(all, first)
	second := holder("the VIP moves off the director whose check fails", rest...)

	// The third's check fails too: it is not eligible, so when the second's fails, the
	// VIP can only go back to the first, once its check passes again.
	third := others(rest, second)[0]
	third.setCheck(t, false)
	waitUntil(t, third.id+" announced as ineligible", 10*time.Second, func() bool { return !second.d.eligible(third.id) })
	second.setCheck(t, false)
	// Every check fails: no director holds the VIP (keepalived's FAULT), whoever leads.
	waitUntil(t, "no director holds the VIP while every check fails", 30*time.Second, func() bool {
		for _, d := range all {
			if d.holds(t, vipAddr) {
				return false
			}
		}
		return true
	})
	first.setCheck(t, true)
	holder("the VIP returns to the only director whose check passes", first)
}

func others(all []*vipOnlyDirector, not *vipOnlyDirector) []*vipOnlyDirector {
	var out []*vipOnlyDirector
	for _, d := range all {
		if d != not {
			out = append(out, d)
		}
	}
	return out
}
