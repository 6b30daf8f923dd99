package vip

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// verifier stands in for raft's VerifyLeader: it answers with err after delay, and
// counts its calls.
type verifier struct {
	mu    sync.Mutex
	err   error
	delay time.Duration
	calls int
}

func (v *verifier) verify(ctx context.Context) error {
	v.mu.Lock()
	v.calls++
	err, delay := v.err, v.delay
	v.mu.Unlock()
	select {
	case <-time.After(delay):
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (v *verifier) set(err error, delay time.Duration) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.err, v.delay = err, delay
}

func (v *verifier) count() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.calls
}

func TestAnnouncementsAreFencedByLeadership(t *testing.T) {
	t.Run("each announcement is verified first, the claim's too", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			v := &verifier{delay: 2 * time.Millisecond}
			r := newRig(t, Config{Burst: 3, Refresh: 10 * time.Second, Verify: v.verify, Lease: 100 * time.Millisecond})
			if err := r.owner.Claim(t.Context(), []netip.Addr{vip4a}); err != nil {
				t.Fatal(err)
			}
			advance(25 * time.Second)
			want := []time.Duration{2 * time.Millisecond, time.Second + 4*time.Millisecond, 2*time.Second + 6*time.Millisecond,
				12*time.Second + 8*time.Millisecond, 22*time.Second + 10*time.Millisecond}
			if got := r.offsets(vip4a); !slices.Equal(got, want) {
				t.Fatalf("announced at %v, want %v (each after a 2 ms verification)", got, want)
			}
			if v.count() != 5 {
				t.Fatalf("%d verifications, want one per announcement (5)", v.count())
			}
			r.owner.Release()
		})
	})
	t.Run("a leader that cannot verify announces nothing until it can", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			v := &verifier{}
			r := newRig(t, Config{Burst: 5, Verify: v.verify, Lease: 100 * time.Millisecond})
			if err := r.owner.Claim(t.Context(), []netip.Addr{vip4a}); err != nil {
				t.Fatal(err)
			}
			v.set(errors.New("not the leader"), 0)
			advance(5 * time.Second)
			if got := r.offsets(vip4a); !slices.Equal(got, secs(0)) {
				t.Fatalf("announced at %v while leadership was not verified, want only the claim's", got)
			}
			if !r.hasHost(vip4a) {
				t.Fatal("the VIP left the interface: releasing is the leader loop's decision, not the schedule's")
			}
			v.set(nil, 0)
			advance(time.Second)
			if got := r.offsets(vip4a); len(got) != 2 {
				t.Fatalf("announced at %v, want the burst to resume once verified", got)
			}
			r.owner.Release()
		})
	})
	t.Run("a verification that outlives the lease vouches for nothing", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			// A pause in the middle of the claim's round trip: it ends past the lease, so
			// the claim announces nothing and the schedule verifies afresh.
			v := &verifier{}
			pause := make(chan struct{})
			verify := func(ctx context.Context) error {
				if v.count() == 0 {
					v.verify(ctx)
					time.Sleep(150 * time.Millisecond) // the process stood still
					close(pause)
					return nil
				}
				return v.verify(ctx)
			}
			r := newRig(t, Config{Burst: 2, Refresh: -1, Verify: verify, Lease: 100 * time.Millisecond})
			if err := r.owner.Claim(t.Context(), []netip.Addr{vip4a}); err != nil {
				t.Fatal(err)
			}
			advance(2 * time.Second)
			<-pause
			got := r.offsets(vip4a)
			want := []time.Duration{150 * time.Millisecond, time.Second + 150*time.Millisecond}
			if !slices.Equal(got, want) {
				t.Fatalf("announced at %v, want %v: after the stale verification, a fresh one first", got, want)
			}
			if v.count() != 3 {
				t.Fatalf("%d verifications, want 3 (the stale one, then one per announcement)", v.count())
			}
			r.owner.Release()
		})
	})
}
