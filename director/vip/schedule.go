package vip

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// vipState is one VIP's place in the schedule.
type vipState struct {
	wanted   bool      // in the set the current claim holds
	added    bool      // this owner put it on the interface and has not removed it since
	sent     int       // announcements since it was claimed or re-added
	failures int       // consecutive failed attempts, for the back-off
	next     time.Time // when it is next due; zero means never
	since    time.Time // when it was last put on the interface (or adopted)
	guarded  bool      // under the fence (Fence.Guard succeeded, no Unguard since)
}

// run drives the schedule of one claim until it ends. Each wake-up is one stepLocked, so
// the tests, which run it under testing/synctest's fake clock, see exact times.
func (o *Owner) run(ctx context.Context, gen uint64, done chan struct{}) {
	defer close(done)
	for {
		o.mu.Lock()
		if !o.claimed || o.gen != gen {
			o.mu.Unlock()
			return
		}
		next := o.nextDueLocked()
		o.mu.Unlock()

		var fire <-chan time.Time
		var timer *time.Timer
		if !next.IsZero() {
			timer = time.NewTimer(time.Until(next))
			fire = timer.C
		}
		select {
		case <-ctx.Done():
			o.mu.Lock()
			if o.claimed && o.gen == gen {
				if err := o.releaseLocked(); err != nil {
					o.log.Error("release VIPs at the end of the claim", "err", err)
				}
			}
			o.mu.Unlock()
		case <-o.wake:
		case <-fire:
			o.mu.Lock()
			now := time.Now()
			announcing := o.announcementDueLocked(now)
			renewing := o.fence != nil && !o.fenceNext.IsZero() && !o.fenceNext.After(now)
			o.mu.Unlock()
			// Removals are always safe; announcements and the fence's leases need the
			// leadership, verified by one round for both.
			until := time.Time{}
			if announcing || renewing {
				var ok bool
				if until, ok = o.fenced(ctx, next); !ok {
					if renewing {
						// Soon, not at BurstInterval: a lease that lapses stops the kernel
						// answering for the VIPs until the next success.
						o.mu.Lock()
						o.fenceNext = time.Now().Add(o.fenceEvery)
						o.mu.Unlock()
					}
					break
				}
			}
			o.mu.Lock()
			switch {
			case !o.claimed || o.gen != gen || ctx.Err() != nil:
			case !until.IsZero() && !time.Now().Before(until):
				// The lock came too late for the verification to vouch for now: the due
				// things are still due, and the loop verifies again.
			default:
				// Renewed before the step, so a VIP's announcement goes out while it is live.
				if !until.IsZero() {
					o.renewLocked(until)
				}
				if err := o.stepLocked(time.Now(), until); err != nil {
					o.log.Error("VIP refresh", "err", err)
				}
				o.scheduleFenceLocked(until)
			}
			o.mu.Unlock()
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// fenced reports whether this node may announce, and until when, having woken for what
// was due at due: it verifies its leadership, and a success vouches for Lease from the
// moment the verification started — raft's followers wait at least HeartbeatTimeout ≥
// LeaderLeaseTimeout after their last contact before they elect another leader. It is
// a timing argument, not a proof (cluster/DESIGN.md: raft may count an answer to an
// earlier RPC, a follower's clock may run fast), that narrows the window in which a
// paused or deposed leader announces to what raft's own lease allows. A wake-up more
// than Lease late means this process was paused: it is logged, and the verification
// decides. Without Verify, always allowed.
func (o *Owner) fenced(ctx context.Context, due time.Time) (time.Time, bool) {
	if late := time.Since(due); o.verify != nil && late > o.lease {
		o.log.Warn("VIP schedule woke late (a pause?): verifying leadership before announcing", "late", late, "lease", o.lease)
	}
	until, ok := o.verifyNow(ctx)
	if !ok && ctx.Err() == nil && o.verify != nil {
		o.mu.Lock()
		o.postponeLocked(time.Now().Add(o.burstInterval))
		o.mu.Unlock()
	}
	return until, ok
}

// verifyNow verifies leadership (Verify) and returns until when that vouches for this
// node: Lease after the verification started. Without Verify, forever.
func (o *Owner) verifyNow(ctx context.Context) (until time.Time, ok bool) {
	if o.verify == nil {
		return time.Now().Add(365 * 24 * time.Hour), true
	}
	start := time.Now()
	vctx, cancel := context.WithTimeout(ctx, o.lease)
	err := o.verify(vctx)
	cancel()
	o.mu.Lock()
	defer o.mu.Unlock()
	if err != nil {
		// The fence retries every FenceRefresh: one warning per run of failures.
		if ctx.Err() == nil && !o.unverified {
			o.log.Warn("leadership not verified: VIP announcements and fence renewals held back", "err", err)
			o.unverified = true
		}
		return time.Time{}, false
	}
	if o.unverified {
		o.log.Info("leadership verified again", "took", time.Since(start))
		o.unverified = false
	}
	until = start.Add(o.lease)
	if !time.Now().Before(until) {
		// Paused during the verification: it no longer vouches for now.
		o.log.Warn("leadership verification outlived the lease: verifying again", "took", time.Since(start), "lease", o.lease)
		return time.Time{}, false
	}
	return until, true
}

// announcementDueLocked reports whether a wanted VIP is due by now.
func (o *Owner) announcementDueLocked(now time.Time) bool {
	for _, st := range o.vips {
		if st.wanted && !st.next.IsZero() && !st.next.After(now) {
			return true
		}
	}
	return false
}

// postponeLocked moves whatever is due by then to then: nothing is announced until
// leadership is verified again.
func (o *Owner) postponeLocked(then time.Time) {
	for _, st := range o.vips {
		if st.wanted && !st.next.IsZero() && st.next.Before(then) {
			st.next = then
		}
	}
}

func (o *Owner) nextDueLocked() time.Time {
	next := o.fenceNext
	for _, st := range o.vips {
		if !st.next.IsZero() && (next.IsZero() || st.next.Before(next)) {
			next = st.next
		}
	}
	return next
}

// stepLocked does whatever is due at now: adds and announces wanted VIPs (re-adding one
// that someone removed), removes unwanted ones, and schedules each VIP's next turn. A
// wanted VIP is only served before until, the end of what the last verification vouches
// for (zero: not verified, removals only).
func (o *Owner) stepLocked(now, until time.Time) error {
	var due []netip.Addr
	for _, addr := range sortedKeys(o.vips) {
		st := o.vips[addr]
		if !st.next.IsZero() && !st.next.After(now) && (!st.wanted || now.Before(until)) {
			due = append(due, addr)
		}
	}
	if len(due) == 0 {
		return nil
	}
	ifi, err := o.links.Interface(o.ifname)
	var prefixes []netip.Prefix
	if err == nil {
		prefixes, err = o.links.AddrList(ifi)
		if err != nil {
			err = fmt.Errorf("VIPs %v: list addresses of %s: %w", due, o.ifname, err)
		}
	} else {
		err = fmt.Errorf("VIPs %v: look up %s: %w", due, o.ifname, err)
	}
	if err != nil {
		for _, addr := range due {
			if o.vips[addr].wanted {
				o.countsOf(addr).addErrors++
			} else {
				o.countsOf(addr).removeErrors++
			}
			o.failed(o.vips[addr], now)
		}
		return err
	}
	var errs []error
	for _, addr := range due {
		if err := o.service(now, until, ifi, prefixes, addr); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// service does one VIP's due turn.
func (o *Owner) service(now, until time.Time, ifi Interface, prefixes []netip.Prefix, addr netip.Addr) error {
	st := o.vips[addr]
	if !st.wanted {
		if st.added {
			o.revoke(addr, st)
			if err := o.links.AddrDel(ifi, addr); err != nil {
				o.countsOf(addr).removeErrors++
				o.failed(st, now)
				return fmt.Errorf("remove VIP %s from %s: %w", addr, o.ifname, err)
			}
			o.log.Info("released VIP", "vip", addr)
			o.event(EventReleased, addr, now)
		}
		o.forget(addr)
		return nil
	}
	where := lookup(prefixes, addr)
	if where == nodeAddress {
		// Taking it over would mean removing the node's own address at release; and the
		// fence must not silence the node's own address.
		o.unguardLocked(addr, st)
		o.countsOf(addr).addErrors++
		o.failed(st, now)
		return fmt.Errorf("claim VIP %s on %s: %w", addr, o.ifname, ErrNodeAddress)
	}
	// Guarded before it goes on the interface: the kernel never answers for it unfenced.
	o.guardLocked(addr, st, until)
	switch where {
	case absent:
		if st.added {
			o.log.Warn("VIP was removed from the interface by someone else; adding it back", "vip", addr)
		}
		if err := o.links.AddrReplace(ifi, addr); err != nil {
			st.added = false
			o.countsOf(addr).addErrors++
			o.failed(st, now)
			return fmt.Errorf("add VIP %s to %s: %w", addr, o.ifname, err)
		}
		kind := EventClaimed
		if st.added {
			st.sent = 0 // a fresh burst: neighbours may have been told otherwise meanwhile
			kind = EventReadded
		}
		st.added, st.since = true, now
		o.event(kind, addr, now)
	case hostAddress:
		if !st.added {
			// Left by a crash that RemoveStale did not see, or by hand: it is the VIP,
			// so from now on it is ours to announce and to remove.
			o.log.Warn("VIP already on the interface; adopting it", "vip", addr)
			st.added, st.since = true, now
			o.event(EventAdopted, addr, now)
		}
	}
	st.failures = 0
	err := o.announce(ifi, addr)
	st.sent++
	switch {
	case st.sent < o.burst:
		st.next = now.Add(o.burstInterval)
	case o.refresh > 0:
		st.next = now.Add(o.refresh)
	default:
		st.next = time.Time{}
	}
	return err
}

// failed schedules a retry with exponential back-off from BurstInterval up to
// maxRetryInterval.
func (o *Owner) failed(st *vipState, now time.Time) {
	st.failures++
	delay := o.burstInterval << min(st.failures-1, 16)
	st.next = now.Add(min(delay, max(maxRetryInterval, o.burstInterval)))
}

func (o *Owner) announce(ifi Interface, addr netip.Addr) error {
	c := o.countsOf(addr)
	if addr.Is4() {
		if err := o.announcer.GratuitousARP(ifi, addr); err != nil {
			c.announceErrors++
			return fmt.Errorf("gratuitous ARP for VIP %s on %s: %w", addr, o.ifname, err)
		}
		c.garps++
		return nil
	}
	if err := o.announcer.UnsolicitedNA(ifi, addr); err != nil {
		c.announceErrors++
		return fmt.Errorf("unsolicited NA for VIP %s on %s: %w", addr, o.ifname, err)
	}
	c.nas++
	return nil
}

// guardLocked puts addr under the fence, live until until. A fence that fails leaves the
// VIP unfenced, as without a fence, rather than unanswered: a missing lease would cost
// the leader its VIP, which the fence exists to protect.
func (o *Owner) guardLocked(addr netip.Addr, st *vipState, until time.Time) {
	if o.fence == nil || st.guarded {
		return
	}
	if err := o.fence.Guard(addr, time.Until(until)); err != nil {
		o.countsOf(addr).fenceErrors++
		o.log.Error("VIP fence: could not guard the VIP; it goes on unfenced", "vip", addr, "err", err)
		return
	}
	st.guarded = true
	o.countsOf(addr).fenceRenewals++
	if o.liveUntil.IsZero() {
		o.liveUntil = until
	}
}

// renewLocked makes every wanted guarded VIP live until until, the end of what the
// verification that just succeeded vouches for. A renewal later than the previous lease's
// end is a lapse: the kernel did not answer for the VIPs in between.
func (o *Owner) renewLocked(until time.Time) {
	if o.fence == nil {
		return
	}
	var addrs []netip.Addr
	for _, addr := range sortedKeys(o.vips) {
		if st := o.vips[addr]; st.wanted && st.guarded {
			addrs = append(addrs, addr)
		}
	}
	if len(addrs) == 0 {
		return
	}
	now := time.Now()
	if lapsed := now.Sub(o.liveUntil); !o.liveUntil.IsZero() && lapsed > 0 {
		for _, addr := range addrs {
			o.countsOf(addr).fenceLapses++
		}
		if now.Sub(o.lapseLogged) >= maxRetryInterval {
			o.lapseLogged = now
			o.log.Warn("VIP fence lapsed: the kernel did not answer ARP/NDP for the VIPs until this renewal (leadership verified later than the lease)",
				"vips", addrs, "lapsed", lapsed, "lease", o.lease)
		}
	}
	if err := o.fence.Renew(addrs, until.Sub(now)); err != nil {
		for _, addr := range addrs {
			o.countsOf(addr).fenceErrors++
		}
		o.log.Error("VIP fence: renew", "vips", addrs, "err", err)
		return
	}
	for _, addr := range addrs {
		o.countsOf(addr).fenceRenewals++
	}
	o.liveUntil = until
}

// scheduleFenceLocked sets when the fence is next renewed: FenceRefresh after the start
// of the verification that vouched until until (zero: leave it), or never when nothing
// wanted is guarded.
func (o *Owner) scheduleFenceLocked(until time.Time) {
	if o.fence == nil {
		return
	}
	guarding := false
	for _, st := range o.vips {
		guarding = guarding || (st.wanted && st.guarded)
	}
	switch {
	case !guarding:
		o.fenceNext, o.liveUntil = time.Time{}, time.Time{}
	case !until.IsZero():
		o.fenceNext = until.Add(o.fenceEvery - o.lease)
	}
}

// revokeLocked ends the lease of every unwanted guarded VIP, before they are removed.
func (o *Owner) revokeLocked() {
	for _, addr := range sortedKeys(o.vips) {
		if st := o.vips[addr]; !st.wanted {
			o.revoke(addr, st)
		}
	}
}

// revoke ends addr's lease at once, if it is guarded; o.mu is held.
func (o *Owner) revoke(addr netip.Addr, st *vipState) {
	if o.fence == nil || !st.guarded {
		return
	}
	if err := o.fence.Renew([]netip.Addr{addr}, 0); err != nil {
		o.countsOf(addr).fenceErrors++
		o.log.Error("VIP fence: end the lease of a released VIP", "vip", addr, "err", err)
	}
}

// unguardLocked takes addr out of the fence. If that fails it is forgotten all the same:
// an address left in the fence is one this node no longer holds, so nothing answers
// for it anyway, and the fence's table goes when the director stops.
func (o *Owner) unguardLocked(addr netip.Addr, st *vipState) {
	if o.fence == nil || !st.guarded {
		return
	}
	if err := o.fence.Unguard(addr); err != nil {
		o.countsOf(addr).fenceErrors++
		o.log.Error("VIP fence: unguard", "vip", addr, "err", err)
	}
	st.guarded = false
}
