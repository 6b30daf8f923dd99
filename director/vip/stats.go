package vip

import (
	"net/netip"
	"slices"
	"time"
)

// EventKind names what an Event reports.
type EventKind string

const (
	EventClaimed  EventKind = "claimed"  // put on the interface by this owner
	EventReadded  EventKind = "re-added" // someone removed it meanwhile; put back
	EventAdopted  EventKind = "adopted"  // found on the interface already, taken over
	EventReleased EventKind = "released" // removed by this owner
	EventStale    EventKind = "stale"    // a VIP this node should not hold, removed
)

// Event is a change of the VIPs on this director's interface, for its timeline
// (Config.OnEvent).
type Event struct {
	At        time.Time
	Kind      EventKind
	VIP       netip.Addr
	Interface string
}

// VIPStats are one VIP's figures on this director. The counters cover every claim
// since the owner was made, so that they only grow.
type VIPStats struct {
	Addr      netip.Addr
	Interface string    // the interface this owner puts it on
	Held      bool      // on the interface now, put there by this owner
	Since     time.Time // when it was last put there (zero when not held)
	// GARPs and NAs count the announcements sent (a GARP is its request and its reply
	// form); AnnounceErrors the ones that failed; AddErrors the failures to put the VIP
	// on the interface (or to find the interface), RemoveErrors to take it off.
	GARPs, NAs, AnnounceErrors, AddErrors, RemoveErrors uint64
	// FenceRenewals count the fence's leases started or renewed for the VIP, FenceLapses
	// the renewals that came after the previous lease had run out (the kernel did not
	// answer ARP/NDP for it in between), FenceErrors the fence's failures.
	FenceRenewals, FenceLapses, FenceErrors uint64
}

// counts are one VIP's counters, kept across claims.
type counts struct {
	garps, nas, announceErrors, addErrors, removeErrors uint64
	fenceRenewals, fenceLapses, fenceErrors             uint64
}

// Stats returns the figures of every VIP this owner has held or tried to hold, sorted.
func (o *Owner) Stats() []VIPStats {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]VIPStats, 0, len(o.counts))
	for addr, c := range o.counts {
		s := VIPStats{Addr: addr, Interface: o.ifname, GARPs: c.garps, NAs: c.nas, AnnounceErrors: c.announceErrors,
			AddErrors: c.addErrors, RemoveErrors: c.removeErrors,
			FenceRenewals: c.fenceRenewals, FenceLapses: c.fenceLapses, FenceErrors: c.fenceErrors}
		if st := o.vips[addr]; st != nil && st.added {
			s.Held, s.Since = true, st.since
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b VIPStats) int { return a.Addr.Compare(b.Addr) })
	return out
}

// countsOf returns addr's counters, created on first use; o.mu is held.
func (o *Owner) countsOf(addr netip.Addr) *counts {
	c := o.counts[addr]
	if c == nil {
		c = &counts{}
		o.counts[addr] = c
	}
	return c
}

// event tells Config.OnEvent; o.mu is held, so OnEvent must not call back.
func (o *Owner) event(kind EventKind, addr netip.Addr, now time.Time) {
	if o.onEvent != nil {
		o.onEvent(Event{At: now, Kind: kind, VIP: addr, Interface: o.ifname})
	}
}
