package vip

import (
	"errors"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"
)

// The fence's leases, on the fake clock: FakeFence.Answers is whether the kernel would
// answer ARP for a VIP, the property the fence is for.

const testLease = 150 * time.Millisecond

func fencedRig(t *testing.T, v *verifier, fence *FakeFence) *rig {
	t.Helper()
	return newRig(t, Config{Burst: 2, Refresh: 10 * time.Second, Verify: v.verify, Lease: testLease, Fence: fence})
}

// watchAnswers samples fence.Answers(addr) every step for d and returns how long, in all,
// it did not answer.
func watchAnswers(fence *FakeFence, addr netip.Addr, d, step time.Duration) (silent time.Duration) {
	for end := time.Now().Add(d); time.Now().Before(end); {
		advance(step)
		if !fence.Answers(addr) {
			silent += step
		}
	}
	return silent
}

func TestFenceLeases(t *testing.T) {
	t.Run("a healthy leader renews every lease/3 and never lapses", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			v := &verifier{delay: 2 * time.Millisecond}
			fence := NewFakeFence()
			r := fencedRig(t, v, fence)
			if err := r.owner.Claim(t.Context(), []netip.Addr{vip4a, vip6}); err != nil {
				t.Fatal(err)
			}
			for _, a := range []netip.Addr{vip4a, vip6} {
				if !fence.Guarded(a) || !r.hasHost(a) {
					t.Fatalf("%s: guarded %v, on the interface %v; want both", a, fence.Guarded(a), r.hasHost(a))
				}
			}
			if silent := watchAnswers(fence, vip4a, 5*time.Second, 5*time.Millisecond); silent != 0 {
				t.Fatalf("a healthy leader's VIP went unanswered for %v", silent)
			}
			renewals := fence.Renewals(vip4a)
			for i := 1; i < len(renewals); i++ {
				if gap := renewals[i].Sub(renewals[i-1]); gap != testLease/3 {
					t.Fatalf("renewal %d came %v after the previous one, want lease/3 = %v", i, gap, testLease/3)
				}
			}
			// Each lease is what is left of the lease from the verification's start.
			if left := fence.LiveUntil(vip4a).Sub(renewals[len(renewals)-1]); left != testLease-2*time.Millisecond {
				t.Fatalf("lease of %v after the renewal, want %v (the lease less the 2 ms verification)", left, testLease-2*time.Millisecond)
			}
			if n := len(renewals); n < 95 || n > 101 {
				t.Fatalf("%d renewals in 5 s, want about 100", n)
			}
			if s := statsOf(t, r.owner, vip4a); s.FenceLapses != 0 || s.FenceErrors != 0 || s.FenceRenewals != uint64(len(renewals)) {
				t.Fatalf("stats %+v, want %d renewals, no lapse or error", s, len(renewals))
			}
			r.owner.Release()
		})
	})
	t.Run("a leader that stops verifying stops being answered for within the lease, by itself", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			// A verification that never returns stands in for a frozen loop: nothing
			// renews, and the lease runs out on its own.
			v := &verifier{delay: 2 * time.Millisecond}
			fence := NewFakeFence()
			r := fencedRig(t, v, fence)
			if err := r.owner.Claim(t.Context(), []netip.Addr{vip4a}); err != nil {
				t.Fatal(err)
			}
			advance(time.Second)
			v.set(nil, time.Hour)
			frozen := time.Now()
			lastRenewal := fence.Renewals(vip4a)[len(fence.Renewals(vip4a))-1]
			var stopped time.Duration
			for fence.Answers(vip4a) {
				advance(time.Millisecond)
				stopped = time.Since(frozen)
				if stopped > time.Second {
					t.Fatal("still answered for a second after verification stopped")
				}
			}
			if stopped > testLease {
				t.Fatalf("answered for %v after the freeze, want at most the lease %v", stopped, testLease)
			}
			if end := fence.LiveUntil(vip4a); end.Sub(lastRenewal) > testLease {
				t.Fatalf("the last lease ran %v past its renewal, more than the lease", end.Sub(lastRenewal))
			}
			if !r.hasHost(vip4a) {
				t.Fatal("the VIP left the interface: that is the leader loop's call; the fence only silences it")
			}
			v.set(nil, 2*time.Millisecond)
			advance(time.Second)
			if !fence.Answers(vip4a) {
				t.Fatal("not answered again once verified")
			}
			if s := statsOf(t, r.owner, vip4a); s.FenceLapses != 1 {
				t.Fatalf("%d lapses, want 1", s.FenceLapses)
			}
			r.owner.Release()
		})
	})
	t.Run("failed verifications let the lease lapse; the next success renews it", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			v := &verifier{delay: time.Millisecond}
			fence := NewFakeFence()
			r := fencedRig(t, v, fence)
			if err := r.owner.Claim(t.Context(), []netip.Addr{vip4a}); err != nil {
				t.Fatal(err)
			}
			advance(500 * time.Millisecond)
			v.set(errors.New("not the leader"), time.Millisecond)
			if silent := watchAnswers(fence, vip4a, time.Second, 5*time.Millisecond); silent < time.Second-testLease {
				t.Fatalf("unanswered for only %v of the second without verification", silent)
			}
			v.set(nil, time.Millisecond)
			// Retried every lease/3, so answered again within that (plus the round trip).
			advance(testLease/3 + 2*time.Millisecond)
			if !fence.Answers(vip4a) {
				t.Fatal("not answered again once verified")
			}
			r.owner.Release()
		})
	})
	t.Run("release ends the lease first and unguards once the address is gone", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			v := &verifier{delay: time.Millisecond}
			fence := NewFakeFence()
			r := fencedRig(t, v, fence)
			if err := r.owner.Claim(t.Context(), []netip.Addr{vip4a, vip4b}); err != nil {
				t.Fatal(err)
			}
			advance(time.Second)
			r.links.Fail(OpAddrDel, vip4b, errBoom)
			if err := r.owner.Release(); !errors.Is(err, errBoom) {
				t.Fatalf("release: %v, want the removal's failure", err)
			}
			if fence.Guarded(vip4a) || r.hasHost(vip4a) {
				t.Fatal("vip4a: still guarded or on the interface after release")
			}
			// The one that could not be removed stays guarded, and silenced.
			if !r.hasHost(vip4b) || !fence.Guarded(vip4b) || fence.Answers(vip4b) {
				t.Fatalf("vip4b: on the interface %v, guarded %v, answered %v; want it on, guarded and silent",
					r.hasHost(vip4b), fence.Guarded(vip4b), fence.Answers(vip4b))
			}
			advance(time.Second)
			if fence.Answers(vip4b) {
				t.Fatal("a released VIP's lease was renewed")
			}
			r.links.Fail(OpAddrDel, vip4b, nil)
			if err := r.owner.Release(); err != nil {
				t.Fatal(err)
			}
			if fence.Guarded(vip4b) || r.hasHost(vip4b) {
				t.Fatal("vip4b: still guarded or on the interface after the second release")
			}
		})
	})
	t.Run("a VIP dropped from the set loses its lease, the others keep theirs", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			v := &verifier{delay: time.Millisecond}
			fence := NewFakeFence()
			r := fencedRig(t, v, fence)
			if err := r.owner.Claim(t.Context(), []netip.Addr{vip4a, vip4b}); err != nil {
				t.Fatal(err)
			}
			advance(time.Second)
			if err := r.owner.SetVIPs([]netip.Addr{vip4a}); err != nil {
				t.Fatal(err)
			}
			advance(time.Second)
			if fence.Guarded(vip4b) || r.hasHost(vip4b) {
				t.Fatal("vip4b still guarded or held")
			}
			if !fence.Answers(vip4a) || !fence.Guarded(vip4a) {
				t.Fatal("vip4a lost its lease")
			}
			r.owner.Release()
		})
	})
	t.Run("a fence that fails leaves the VIP unfenced, not unanswered", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			v := &verifier{delay: time.Millisecond}
			fence := NewFakeFence()
			fence.Fail(errBoom)
			r := fencedRig(t, v, fence)
			if err := r.owner.Claim(t.Context(), []netip.Addr{vip4a}); err != nil {
				t.Fatal(err)
			}
			advance(2 * time.Second)
			if !r.hasHost(vip4a) || len(r.offsets(vip4a)) != 2 {
				t.Fatalf("on the interface %v, %d announcements; want held and announced", r.hasHost(vip4a), len(r.offsets(vip4a)))
			}
			if fence.Guarded(vip4a) || !fence.Answers(vip4a) {
				t.Fatal("guarded by a failing fence")
			}
			if s := statsOf(t, r.owner, vip4a); s.FenceErrors == 0 {
				t.Fatal("no fence error counted")
			}
			r.owner.Release()
		})
	})
	t.Run("RemoveStale takes what a previous director's fence guarded out of it", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			fence := NewFakeFence()
			r := fencedRig(t, &verifier{}, fence)
			// A killed director's guards, kept by the restarted fence: silent.
			r.links.AddPrefix(ifname, netip.PrefixFrom(vip4a, 32))
			for _, a := range []netip.Addr{vip4a, vip4b, nodeAddr4.Addr()} {
				fence.Guard(a, 0)
			}
			removed, err := r.owner.RemoveStale([]netip.Addr{vip4a, vip4b, nodeAddr4.Addr()})
			if err != nil || len(removed) != 1 || removed[0] != vip4a {
				t.Fatalf("RemoveStale: %v, %v; want vip4a removed", removed, err)
			}
			for _, a := range []netip.Addr{vip4a, vip4b, nodeAddr4.Addr()} {
				if fence.Guarded(a) {
					t.Errorf("%s still guarded after RemoveStale", a)
				}
			}
		})
	})
	t.Run("the node's own address is never fenced", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			v := &verifier{delay: time.Millisecond}
			fence := NewFakeFence()
			r := fencedRig(t, v, fence)
			if err := r.owner.Claim(t.Context(), []netip.Addr{nodeAddr4.Addr()}); !errors.Is(err, ErrNodeAddress) {
				t.Fatalf("claim of the node's address: %v, want ErrNodeAddress", err)
			}
			if fence.Guarded(nodeAddr4.Addr()) {
				t.Fatal("the node's own address is guarded")
			}
			r.owner.Release()
		})
	})
}

func TestFenceConfig(t *testing.T) {
	links, ann := NewFakeLinks(), NewFakeAnnouncer(nil)
	v := &verifier{}
	if _, err := NewOwner(Config{Interface: ifname, Verify: v.verify, Lease: testLease, Fence: NewFakeFence(), FenceRefresh: testLease}, links, ann); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("a refresh as long as the lease: %v, want ErrBadConfig", err)
	}
	synctest.Test(t, func(t *testing.T) {
		// Without Verify there is no lease to keep: the fence is not used.
		fence := NewFakeFence()
		r := newRig(t, Config{Burst: 1, Refresh: -1, Fence: fence})
		if err := r.owner.Claim(t.Context(), []netip.Addr{vip4a}); err != nil {
			t.Fatal(err)
		}
		if fence.Guarded(vip4a) {
			t.Fatal("guarded without Verify")
		}
		r.owner.Release()
	})
	for in, want := range map[string]FenceMode{"": FenceAuto, "auto": FenceAuto, "off": FenceOff} {
		if got, err := ParseFenceMode(in); err != nil || got != want {
			t.Errorf("ParseFenceMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseFenceMode("on"); !errors.Is(err, ErrBadConfig) {
		t.Errorf("ParseFenceMode(on): %v, want ErrBadConfig", err)
	}
}

func statsOf(t *testing.T, o *Owner, addr netip.Addr) VIPStats {
	t.Helper()
	for _, s := range o.Stats() {
		if s.Addr == addr {
			return s
		}
	}
	t.Fatalf("no stats for %s", addr)
	return VIPStats{}
}
