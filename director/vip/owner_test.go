package vip

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// The tests run inside testing/synctest bubbles: time.Now, timers and time.Sleep use a
// fake clock that jumps straight to the next wake-up once every goroutine is blocked, so
// the schedule is asserted to the nanosecond and nothing waits in real time.

const ifname = "eth0"

var (
	mac       = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	nodeAddr4 = netip.MustParsePrefix("10.0.0.5/24")
	nodeAddr6 = netip.MustParsePrefix("2001:db8::5/64")
	linkLocal = netip.MustParsePrefix("fe80::a/64")
	vip4a     = netip.MustParseAddr("10.0.0.100")
	vip4b     = netip.MustParseAddr("10.0.0.101")
	vip4c     = netip.MustParseAddr("10.0.0.102")
	vip6      = netip.MustParseAddr("2001:db8::100")
	errBoom   = errors.New("boom")
)

type rig struct {
	links *FakeLinks
	ann   *FakeAnnouncer
	owner *Owner
	start time.Time
}

// newRig builds an owner over fakes whose interface holds the node's own addresses. Call
// it inside the synctest bubble.
func newRig(t *testing.T, cfg Config) *rig {
	t.Helper()
	links := NewFakeLinks()
	links.AddLink(ifname, mac, nodeAddr4, nodeAddr6, linkLocal)
	ann := NewFakeAnnouncer(links)
	cfg.Interface = ifname
	cfg.Logger = slog.New(slog.DiscardHandler)
	owner, err := NewOwner(cfg, links, ann)
	if err != nil {
		t.Fatal(err)
	}
	return &rig{links: links, ann: ann, owner: owner, start: time.Now()}
}

// advance lets d of fake time pass and waits for the owner's loop to settle.
func advance(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

// offsets returns, per announcement of addr, its time since the rig was built.
func (r *rig) offsets(addr netip.Addr) []time.Duration {
	var out []time.Duration
	for _, a := range r.ann.Sent() {
		if a.Addr == addr {
			out = append(out, a.At.Sub(r.start))
		}
	}
	return out
}

func (r *rig) hasHost(addr netip.Addr) bool {
	return slices.Contains(r.links.Prefixes(ifname), netip.PrefixFrom(addr, addr.BitLen()))
}

func secs(s ...float64) []time.Duration {
	out := make([]time.Duration, len(s))
	for i, v := range s {
		out[i] = time.Duration(v * float64(time.Second))
	}
	return out
}

func TestNewOwnerRejectsBadConfig(t *testing.T) {
	links, ann := NewFakeLinks(), NewFakeAnnouncer(nil)
	for _, tc := range []struct {
		name  string
		cfg   Config
		links Links
		ann   Announcer
	}{
		{"no interface", Config{}, links, ann},
		{"negative burst", Config{Interface: ifname, Burst: -1}, links, ann},
		{"negative burst interval", Config{Interface: ifname, BurstInterval: -time.Second}, links, ann},
		{"nil links", Config{Interface: ifname}, nil, ann},
		{"nil announcer", Config{Interface: ifname}, links, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewOwner(tc.cfg, tc.links, tc.ann); !errors.Is(err, ErrBadConfig) {
				t.Fatalf("got %v, want ErrBadConfig", err)
			}
		})
	}
}

func TestClaimSchedule(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want []time.Duration // announcement times of the VIP within the first minute
	}{
		{"defaults: burst of 5 a second apart, then every 10 s", Config{},
			secs(0, 1, 2, 3, 4, 14, 24, 34, 44, 54)},
		{"burst of 5 at 1.1 s, refresh off", Config{BurstInterval: 1100 * time.Millisecond, Refresh: -1},
			secs(0, 1.1, 2.2, 3.3, 4.4)},
		{"single announcement, refresh every 20 s", Config{Burst: 1, Refresh: 20 * time.Second},
			secs(0, 20, 40)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(t, tc.cfg)
				if err := r.owner.Claim(t.Context(), []netip.Addr{vip4a}); err != nil {
					t.Fatal(err)
				}
				if got := r.offsets(vip4a); !slices.Equal(got, secs(0)) {
					t.Fatalf("announced %v when Claim returned, want once at once", got)
				}
				advance(59 * time.Second)
				if got := r.offsets(vip4a); !slices.Equal(got, tc.want) {
					t.Errorf("announced at %v, want %v", got, tc.want)
				}
				if err := r.owner.Release(); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

func TestReleaseRemovesExactlyWhatWasAddedAndStopsAnnouncing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{})
		// Someone else's host address beside ours must survive the release.
		other := netip.MustParsePrefix("10.0.0.200/32")
		r.links.AddPrefix(ifname, other)
		before := r.links.Prefixes(ifname)

		if err := r.owner.Claim(t.Context(), []netip.Addr{vip4a, vip4b, vip6}); err != nil {
			t.Fatal(err)
		}
		for _, v := range []netip.Addr{vip4a, vip4b, vip6} {
			if !r.hasHost(v) {
				t.Errorf("%s not on the interface after Claim", v)
			}
		}
		if got := r.owner.Held(); !slices.Equal(got, []netip.Addr{vip4a, vip4b, vip6}) {
			t.Errorf("Held = %v", got)
		}
		advance(2500 * time.Millisecond)
		if err := r.owner.Release(); err != nil {
			t.Fatal(err)
		}
		if got := r.links.Prefixes(ifname); !slices.Equal(got, before) {
			t.Errorf("after Release the interface has %v, want %v", got, before)
		}
		if got := r.owner.Held(); len(got) != 0 {
			t.Errorf("Held after Release = %v", got)
		}
		sent := len(r.ann.Sent())
		advance(time.Minute)
		if got := len(r.ann.Sent()); got != sent {
			t.Errorf("%d announcements after Release", got-sent)
		}
	})
}

func TestContextEndReleases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{})
		ctx, cancel := context.WithCancel(t.Context())
		if err := r.owner.Claim(ctx, []netip.Addr{vip4a}); err != nil {
			t.Fatal(err)
		}
		cancel()
		synctest.Wait()
		if r.hasHost(vip4a) || len(r.owner.Held()) != 0 {
			t.Fatalf("VIP still held after the claim's context ended: %v", r.links.Prefixes(ifname))
		}
		// A later Release is a no-op, and a new claim works.
		if err := r.owner.Release(); err != nil {
			t.Fatal(err)
		}
		if err := r.owner.Claim(t.Context(), []netip.Addr{vip4b}); err != nil {
			t.Fatal(err)
		}
		if !r.hasHost(vip4b) {
			t.Fatal("second claim did not add its VIP")
		}
		if err := r.owner.Release(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestSetVIPsChangesOnlyTheDelta(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{Burst: 1, Refresh: 10 * time.Second})
		if err := r.owner.Claim(t.Context(), []netip.Addr{vip4a, vip4b}); err != nil {
			t.Fatal(err)
		}
		advance(3 * time.Second)
		if err := r.owner.SetVIPs([]netip.Addr{vip4b, vip4c}); err != nil {
			t.Fatal(err)
		}
		advance(0) // the schedule's loop does the change
		if r.hasHost(vip4a) || !r.hasHost(vip4b) || !r.hasHost(vip4c) {
			t.Fatalf("after SetVIPs the interface has %v", r.links.Prefixes(ifname))
		}
		if got := r.owner.Held(); !slices.Equal(got, []netip.Addr{vip4b, vip4c}) {
			t.Errorf("Held = %v", got)
		}
		advance(9 * time.Second) // to t=12: b refreshed at 10, c not yet (due at 13)
		for _, tc := range []struct {
			vip  netip.Addr
			want []time.Duration
		}{
			{vip4a, secs(0)},
			{vip4b, secs(0, 10)},
			{vip4c, secs(3)},
		} {
			if got := r.offsets(tc.vip); !slices.Equal(got, tc.want) {
				t.Errorf("%s announced at %v, want %v", tc.vip, got, tc.want)
			}
		}
		if err := r.owner.Release(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestReaddsVIPRemovedByHand(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{Burst: 2, Refresh: 10 * time.Second})
		if err := r.owner.Claim(t.Context(), []netip.Addr{vip4a}); err != nil {
			t.Fatal(err)
		}
		advance(5 * time.Second)
		r.links.RemovePrefix(ifname, vip4a) // ip addr del 10.0.0.100/32 dev eth0
		advance(6 * time.Second)            // past the refresh at t=11
		if !r.hasHost(vip4a) {
			t.Fatal("VIP not re-added at the refresh")
		}
		advance(2 * time.Second)
		// The re-add at 11 starts a new burst of 2: 11 and 12.
		if got, want := r.offsets(vip4a), secs(0, 1, 11, 12); !slices.Equal(got, want) {
			t.Errorf("announced at %v, want %v", got, want)
		}
		if err := r.owner.Release(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestAnnouncementKindFollowsFamily(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{Burst: 1})
		if err := r.owner.Claim(t.Context(), []netip.Addr{vip4a, vip6}); err != nil {
			t.Fatal(err)
		}
		want := []Announcement{
			{At: r.start, Kind: GratuitousARP, Interface: ifname, Addr: vip4a},
			{At: r.start, Kind: UnsolicitedNA, Interface: ifname, Addr: vip6},
		}
		if got := r.ann.Sent(); !slices.Equal(got, want) {
			t.Errorf("sent %v, want %v", got, want)
		}
		if got, want := r.links.Prefixes(ifname), netip.MustParsePrefix("2001:db8::100/128"); !slices.Contains(got, want) {
			t.Errorf("IPv6 VIP not added as %s: %v", want, got)
		}
		if err := r.owner.Release(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestClaimAddressesAlreadyOnTheInterface(t *testing.T) {
	for _, tc := range []struct {
		name      string
		present   netip.Prefix
		wantErr   error
		wantAfter bool // the address is still there after Release
	}{
		{"a host address equal to the VIP is adopted and removed at release",
			netip.MustParsePrefix("10.0.0.100/32"), nil, false},
		{"the node's own address equal to the VIP is refused and left alone",
			netip.MustParsePrefix("10.0.0.100/24"), ErrNodeAddress, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(t, Config{})
				r.links.AddPrefix(ifname, tc.present)
				err := r.owner.Claim(t.Context(), []netip.Addr{vip4a})
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Claim: %v, want %v", err, tc.wantErr)
				}
				advance(30 * time.Second) // retries must not change the verdict
				if err := r.owner.Release(); err != nil {
					t.Fatal(err)
				}
				if got := slices.Contains(r.links.Prefixes(ifname), tc.present); got != tc.wantAfter {
					t.Errorf("%s present after Release = %v, want %v", tc.present, got, tc.wantAfter)
				}
				if tc.wantErr != nil && len(r.ann.Sent()) != 0 {
					t.Errorf("announced a refused VIP: %v", r.ann.Sent())
				}
			})
		})
	}
}

func TestFailedAddIsRetriedWithBackOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{Burst: 1})
		r.links.Fail(OpAddrReplace, vip4a, errBoom)
		if err := r.owner.Claim(t.Context(), []netip.Addr{vip4a, vip4b}); !errors.Is(err, errBoom) {
			t.Fatalf("Claim: %v, want the add failure", err)
		}
		if got := r.owner.Held(); !slices.Equal(got, []netip.Addr{vip4b}) {
			t.Errorf("Held = %v, want only the VIP that worked", got)
		}
		advance(2500 * time.Millisecond) // retries at 1 s and 3 s (1 s, then 2 s back-off)
		r.links.Fail(OpAddrReplace, vip4a, nil)
		advance(time.Second)
		if got, want := r.offsets(vip4a), secs(3); !slices.Equal(got, want) {
			t.Errorf("announced at %v, want %v", got, want)
		}
		if !r.hasHost(vip4a) {
			t.Error("VIP not added by the retry")
		}
		if err := r.owner.Release(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestRemoveStale(t *testing.T) {
	stale4 := netip.MustParsePrefix("10.0.0.100/32")
	stale6 := netip.MustParsePrefix("2001:db8::100/128")
	notVIP := netip.MustParsePrefix("10.0.0.200/32")
	for _, tc := range []struct {
		name        string
		present     []netip.Prefix
		vips        []netip.Addr
		wantRemoved []netip.Addr
		wantLeft    []netip.Prefix // beside the node's own addresses
	}{
		{"host addresses equal to VIPs are removed", []netip.Prefix{stale4, stale6, notVIP},
			[]netip.Addr{vip4a, vip4b, vip6}, []netip.Addr{vip4a, vip6}, []netip.Prefix{notVIP}},
		{"the node's own address is never removed even if it equals a VIP", nil,
			[]netip.Addr{nodeAddr4.Addr(), nodeAddr6.Addr()}, nil, nil},
		{"nothing stale, nothing removed", []netip.Prefix{notVIP},
			[]netip.Addr{vip4a}, nil, []netip.Prefix{notVIP}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, Config{})
			for _, p := range tc.present {
				r.links.AddPrefix(ifname, p)
			}
			removed, err := r.owner.RemoveStale(tc.vips)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(removed, tc.wantRemoved) {
				t.Errorf("removed %v, want %v", removed, tc.wantRemoved)
			}
			want := append([]netip.Prefix{nodeAddr4, nodeAddr6, linkLocal}, tc.wantLeft...)
			slices.SortFunc(want, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
			if got := r.links.Prefixes(ifname); !slices.Equal(got, want) {
				t.Errorf("left %v, want %v", got, want)
			}
		})
	}
}

func TestCallsOutOfTurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{})
		if err := r.owner.SetVIPs([]netip.Addr{vip4a}); !errors.Is(err, ErrNotClaimed) {
			t.Errorf("SetVIPs before Claim: %v, want ErrNotClaimed", err)
		}
		if err := r.owner.Claim(t.Context(), []netip.Addr{vip4a}); err != nil {
			t.Fatal(err)
		}
		if err := r.owner.Claim(t.Context(), []netip.Addr{vip4b}); !errors.Is(err, ErrClaimed) {
			t.Errorf("second Claim: %v, want ErrClaimed", err)
		}
		if _, err := r.owner.RemoveStale([]netip.Addr{vip4a}); !errors.Is(err, ErrClaimed) {
			t.Errorf("RemoveStale while claimed: %v, want ErrClaimed", err)
		}
		if !r.hasHost(vip4a) {
			t.Error("RemoveStale while claimed removed the held VIP")
		}
		if err := r.owner.Release(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestBadVIPsAreReportedAndTheOthersStillClaimed(t *testing.T) {
	for _, bad := range []string{"0.0.0.0", "127.0.0.1", "224.0.0.18", "255.255.255.255", "::", "::1", "ff02::1", "fe80::1", "fe80::1%eth0"} {
		t.Run(bad, func(t *testing.T) {
			r := newRig(t, Config{})
			err := r.owner.Claim(t.Context(), []netip.Addr{netip.MustParseAddr(bad), vip4a})
			if !errors.Is(err, ErrBadVIP) || !strings.Contains(err.Error(), bad) {
				t.Fatalf("Claim(%s, %s): %v, want ErrBadVIP naming it", bad, vip4a, err)
			}
			if held := r.owner.Held(); !slices.Equal(held, []netip.Addr{vip4a}) {
				t.Fatalf("held %v: one bad VIP must not cost the good one", held)
			}
			if err := r.owner.SetVIPs([]netip.Addr{netip.MustParseAddr(bad), vip4a}); !errors.Is(err, ErrBadVIP) {
				t.Fatalf("SetVIPs(%s): %v, want ErrBadVIP", bad, err)
			}
			if err := r.owner.Release(); err != nil {
				t.Fatal(err)
			}
			if _, err := r.owner.RemoveStale([]netip.Addr{netip.MustParseAddr(bad)}); err != nil {
				t.Fatalf("RemoveStale(%s): %v: an unusable address is simply not a VIP", bad, err)
			}
		})
	}
}

func TestErrorsNameTheVIPAndTheInterface(t *testing.T) {
	for _, tc := range []struct {
		name   string
		inject func(r *rig)
		act    func(r *rig) error
		want   []string // substrings besides the interface name
	}{
		{"add", func(r *rig) { r.links.Fail(OpAddrReplace, vip4a, errBoom) },
			func(r *rig) error { return r.owner.Claim(context.Background(), []netip.Addr{vip4a}) },
			[]string{"add VIP 10.0.0.100"}},
		{"gratuitous ARP", func(r *rig) { r.ann.Fail(vip4a, errBoom) },
			func(r *rig) error { return r.owner.Claim(context.Background(), []netip.Addr{vip4a}) },
			[]string{"gratuitous ARP for VIP 10.0.0.100"}},
		{"neighbour advertisement", func(r *rig) { r.ann.Fail(vip6, errBoom) },
			func(r *rig) error { return r.owner.Claim(context.Background(), []netip.Addr{vip6}) },
			[]string{"unsolicited NA for VIP 2001:db8::100"}},
		{"interface lookup", func(r *rig) { r.links.Fail(OpInterface, netip.Addr{}, errBoom) },
			func(r *rig) error { return r.owner.Claim(context.Background(), []netip.Addr{vip4a}) },
			[]string{"10.0.0.100", "look up"}},
		{"remove at release", func(r *rig) {
			if err := r.owner.Claim(context.Background(), []netip.Addr{vip4a}); err != nil {
				panic(err)
			}
			r.links.Fail(OpAddrDel, vip4a, errBoom)
		}, func(r *rig) error { return r.owner.Release() },
			[]string{"remove VIP 10.0.0.100"}},
		{"remove stale", func(r *rig) {
			r.links.AddPrefix(ifname, netip.PrefixFrom(vip4a, 32))
			r.links.Fail(OpAddrDel, vip4a, errBoom)
		}, func(r *rig) error { _, err := r.owner.RemoveStale([]netip.Addr{vip4a}); return err },
			[]string{"remove stale VIP 10.0.0.100"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(t, Config{})
				tc.inject(r)
				err := tc.act(r)
				if !errors.Is(err, errBoom) {
					t.Fatalf("got %v, want it to wrap the injected error", err)
				}
				for _, s := range append(tc.want, ifname) {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("%q does not name %q", err, s)
					}
				}
				r.links.Fail(OpAddrDel, vip4a, nil)
				r.links.Fail(OpInterface, netip.Addr{}, nil)
				if err := r.owner.Release(); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

func TestFailedReleaseKeepsTheAddressHeldUntilRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{})
		if err := r.owner.Claim(t.Context(), []netip.Addr{vip4a}); err != nil {
			t.Fatal(err)
		}
		r.links.Fail(OpAddrDel, vip4a, errBoom)
		if err := r.owner.Release(); !errors.Is(err, errBoom) {
			t.Fatalf("Release: %v", err)
		}
		if got := r.owner.Held(); !slices.Equal(got, []netip.Addr{vip4a}) {
			t.Errorf("Held after a failed release = %v, want the VIP still reported", got)
		}
		r.links.Fail(OpAddrDel, vip4a, nil)
		// RemoveStale retries it even when the cluster's VIPs no longer include it.
		removed, err := r.owner.RemoveStale(nil)
		if err != nil || !slices.Equal(removed, []netip.Addr{vip4a}) {
			t.Fatalf("RemoveStale = %v, %v", removed, err)
		}
		if r.hasHost(vip4a) || len(r.owner.Held()) != 0 {
			t.Error("VIP still there")
		}
	})
}
