// Package vip makes the Raft leader the owner of the cluster's virtual IP addresses: it
// puts each VIP on the VIP interface, announces it with gratuitous ARP (IPv4) or an
// unsolicited neighbour advertisement (IPv6) in a burst and then periodically, and takes
// every address it added away again when leadership ends. DESIGN.md explains the schedule.
package vip

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Schedule defaults; DESIGN.md gives the reasons.
const (
	DefaultBurst         = 5
	DefaultBurstInterval = time.Second
	DefaultRefresh       = 10 * time.Second
	// maxRetryInterval caps the back-off between attempts at a VIP that failed.
	maxRetryInterval = 10 * time.Second
)

// Config is one director's VIP ownership settings.
type Config struct {
	// Interface carries the VIPs (the interface on the clients' L2 segment).
	Interface string
	// Burst is how many announcements a VIP gets when it is claimed (or re-added after
	// someone removed it); 0 means DefaultBurst. The first is sent before Claim or SetVIPs
	// returns.
	Burst int
	// BurstInterval spaces the burst; 0 means DefaultBurstInterval. Keep it above the
	// kernel's 1 s ARP locktime (see DESIGN.md).
	BurstInterval time.Duration
	// Refresh is the period of the announcements, and of the check that the VIP is still on
	// the interface, after the burst; 0 means DefaultRefresh and a negative value turns
	// both off.
	Refresh time.Duration
	// OnEvent, if set, is told of every VIP this owner puts on or takes off the
	// interface. It is called under the owner's lock: it must not block nor call back.
	OnEvent func(Event)
	// Verify, if set, confirms that this node still leads (raft's VerifyLeader, a round
	// trip to a quorum) before each scheduled announcement after the claim's first; an
	// error skips the announcement (DESIGN.md, Fencing).
	Verify func(ctx context.Context) error
	// Lease is how long a Verify that succeeded vouches for this node, counted from its
	// start: raft's LeaderLeaseTimeout, which is at most its HeartbeatTimeout, the least
	// time any follower waits after its last contact before it may elect another leader.
	// An announcement is sent only within Lease of a successful Verify, and a wake-up
	// later than Lease past its due time (a GC pause, a frozen VM) is verified again
	// before anything is sent. 0 means DefaultLease; only used with Verify.
	Lease time.Duration
	// Fence, if set (with Verify; without it there is nothing to lease), is the kernel's
	// lease on answering for the VIPs: each VIP is guarded before it goes on the interface,
	// made live for what is left of Lease after each successful verification, and
	// unguarded once it is off the interface (DESIGN.md, Fencing). Several owners may share
	// one.
	Fence Fence
	// FenceRefresh is how often the fence's leases are renewed, counted from the start of
	// the verification that renewed them; 0 means Lease/3, so that a healthy leader renews
	// twice before a lease runs out. Only used with Fence.
	FenceRefresh time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// DefaultLease is cluster.DefaultLeaderLeaseTimeout (vip does not import cluster).
const DefaultLease = 150 * time.Millisecond

// Owner claims the VIPs while this director leads and releases them when it stops.
// Its methods are safe for concurrent use.
type Owner struct {
	ifname        string
	burst         int
	burstInterval time.Duration
	refresh       time.Duration // <= 0: no refresh
	verify        func(context.Context) error
	lease         time.Duration
	fence         Fence         // nil: no fence
	fenceEvery    time.Duration // how often the fence is renewed
	log           *slog.Logger
	links         Links
	announcer     Announcer
	onEvent       func(Event)

	mu      sync.Mutex
	claimed bool
	gen     uint64 // identifies the claim a refresh loop belongs to
	cancel  context.CancelFunc
	done    chan struct{} // closed when the current claim's loop has exited
	wake    chan struct{} // tells the loop the schedule moved earlier
	// vips holds the VIPs wanted under the current claim and any address this owner added
	// and has not yet managed to remove.
	vips map[netip.Addr]*vipState
	// counts are each VIP's counters (Stats), kept when the VIP goes.
	counts map[netip.Addr]*counts
	// fenceNext is when the fence's leases are next renewed (zero: nothing guarded);
	// liveUntil is when the last renewal runs out.
	fenceNext, liveUntil time.Time
	lapseLogged          time.Time // rate-limits the lapse warning
	unverified           bool      // the last verification failed (logged once per run of failures)
}

// NewOwner returns an owner that holds nothing yet.
func NewOwner(cfg Config, links Links, announcer Announcer) (*Owner, error) {
	if cfg.Interface == "" {
		return nil, fmt.Errorf("%w: no VIP interface", ErrBadConfig)
	}
	if cfg.Burst < 0 || cfg.BurstInterval < 0 || cfg.Lease < 0 || cfg.FenceRefresh < 0 {
		return nil, fmt.Errorf("%w: negative burst %d, burst interval %s, lease %s or fence refresh %s",
			ErrBadConfig, cfg.Burst, cfg.BurstInterval, cfg.Lease, cfg.FenceRefresh)
	}
	if links == nil || announcer == nil {
		return nil, fmt.Errorf("%w: nil Links or Announcer", ErrBadConfig)
	}
	o := &Owner{
		ifname:        cfg.Interface,
		burst:         cmp.Or(cfg.Burst, DefaultBurst),
		burstInterval: cmp.Or(cfg.BurstInterval, DefaultBurstInterval),
		refresh:       cmp.Or(cfg.Refresh, DefaultRefresh),
		verify:        cfg.Verify,
		lease:         cmp.Or(cfg.Lease, DefaultLease),
		log:           cfg.Logger,
		links:         links,
		announcer:     announcer,
		onEvent:       cfg.OnEvent,
		wake:          make(chan struct{}, 1),
		vips:          make(map[netip.Addr]*vipState),
		counts:        make(map[netip.Addr]*counts),
	}
	if o.log == nil {
		o.log = slog.Default()
	}
	o.log = o.log.With("interface", cfg.Interface)
	if cfg.Fence != nil && cfg.Verify != nil {
		o.fence = cfg.Fence
		o.fenceEvery = cmp.Or(cfg.FenceRefresh, o.lease/3)
		if o.fenceEvery >= o.lease {
			return nil, fmt.Errorf("%w: fence refresh %s is not shorter than the lease %s: every lease would lapse",
				ErrBadConfig, o.fenceEvery, o.lease)
		}
	}
	return o, nil
}

// Claim makes this owner hold vips: each is added to the interface and announced once
// before Claim returns, then announced Burst-1 more times BurstInterval apart and every
// Refresh after that, until Release or until ctx ends (which releases too). With Verify,
// the first announcement is fenced like the others: leadership is verified first (a
// claim may come long after the term began: tracked checks that passed late, a new
// interface), and if that fails the schedule's loop verifies and announces. A VIP that
// fails is retried with back-off; the error returned joins each VIP's failure, and what
// succeeded is held regardless, so the caller may carry on or Release and step down.
func (o *Owner) Claim(ctx context.Context, vips []netip.Addr) error {
	want, badVIPs := normalise(vips)
	until, fenced := o.verifyNow(ctx)
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.claimed {
		return ErrClaimed
	}
	o.claimed = true
	o.gen++
	loopCtx, cancel := context.WithCancel(ctx)
	o.cancel = cancel
	o.done = make(chan struct{})
	now := time.Now()
	for _, v := range want {
		o.want(v, now)
	}
	o.log.Info("claiming VIPs", "vips", want)
	var err error
	if fenced && now.Before(until) {
		o.renewLocked(until) // what an earlier claim left guarded
		err = o.stepLocked(now, until)
		o.scheduleFenceLocked(until)
	}
	go o.run(loopCtx, o.gen, o.done)
	return errors.Join(badVIPs, err)
}

// SetVIPs changes the held set during a claim: VIPs not held yet are claimed as in Claim,
// VIPs no longer wanted are removed, and the others are left alone. The schedule's loop
// does it, so that every announcement goes through its fence.
func (o *Owner) SetVIPs(vips []netip.Addr) error {
	want, badVIPs := normalise(vips)
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.claimed {
		return ErrNotClaimed
	}
	now := time.Now()
	for addr, st := range o.vips {
		if st.wanted && !slices.Contains(want, addr) {
			st.wanted = false
			st.next = now
		}
	}
	for _, v := range want {
		o.want(v, now)
	}
	select {
	case o.wake <- struct{}{}:
	default:
	}
	return badVIPs
}

// want adds addr to the wanted set, due now unless it is already held.
func (o *Owner) want(addr netip.Addr, now time.Time) {
	st, ok := o.vips[addr]
	if !ok {
		o.vips[addr] = &vipState{wanted: true, next: now}
		return
	}
	if !st.wanted {
		// Wanted again before its removal went through: it is still on the interface
		// but was not announced since, so start over.
		st.wanted, st.sent, st.next = true, 0, now
	}
}

// Release removes every address this owner added, stops all announcements and returns
// once they have stopped; after it returns this node sends no more GARP or NA. It is
// meant to be the first thing done when leadership is lost. Addresses that could not be
// removed stay in Held and are retried by the next Release or RemoveStale.
func (o *Owner) Release() error {
	o.mu.Lock()
	done := o.done
	err := o.releaseLocked()
	o.mu.Unlock()
	if done != nil {
		<-done
	}
	return err
}

func (o *Owner) releaseLocked() error {
	if o.claimed {
		o.claimed = false
		o.cancel()
		o.log.Info("releasing VIPs", "vips", o.heldLocked())
	}
	for _, st := range o.vips {
		st.wanted = false
	}
	return o.removeLocked()
}

// removeLocked deletes every unwanted address this owner added. Their leases end first,
// so that one whose removal fails is not answered for meanwhile.
func (o *Owner) removeLocked() error {
	if len(o.vips) == 0 {
		return nil
	}
	o.revokeLocked()
	defer o.scheduleFenceLocked(time.Time{})
	ifi, err := o.links.Interface(o.ifname)
	if errors.Is(err, ErrLinkNotFound) {
		// The addresses went with the interface.
		o.forgetUnwanted()
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove VIPs from %s: %w", o.ifname, err)
	}
	var errs []error
	for _, addr := range sortedKeys(o.vips) {
		st := o.vips[addr]
		if st.wanted {
			continue
		}
		if st.added {
			if err := o.links.AddrDel(ifi, addr); err != nil {
				o.countsOf(addr).removeErrors++
				errs = append(errs, fmt.Errorf("remove VIP %s from %s: %w", addr, o.ifname, err))
				continue
			}
			o.event(EventReleased, addr, time.Now())
		}
		o.forget(addr)
	}
	return errors.Join(errs...)
}

func (o *Owner) forgetUnwanted() {
	for addr, st := range o.vips {
		if !st.wanted {
			o.forget(addr)
		}
	}
}

// forgetStale is forget for an address that a previous director's fence may have
// guarded (NewNftFence keeps its guards): it is off the interface, or the node's own,
// so it leaves the fence whoever guarded it.
func (o *Owner) forgetStale(addr netip.Addr) {
	if o.fence != nil {
		if st := o.vips[addr]; st == nil || !st.guarded {
			if err := o.fence.Unguard(addr); err != nil {
				o.countsOf(addr).fenceErrors++
				o.log.Error("VIP fence: unguard a stale VIP", "vip", addr, "err", err)
			}
		}
	}
	o.forget(addr)
}

// forget drops addr from the schedule, taking it out of the fence first; o.mu is held.
func (o *Owner) forget(addr netip.Addr) {
	if st := o.vips[addr]; st != nil {
		o.unguardLocked(addr, st)
	}
	delete(o.vips, addr)
}

// RemoveStale removes from the interface every host address (/32, /128) equal to one of
// vips, and anything this owner failed to remove before. A director that starts as a
// follower calls it with the cluster's VIPs so that a VIP left behind by a crash (or by
// the keepalived it replaced) cannot answer ARP beside the leader's. It never removes an
// address with a shorter prefix: that is the node's own. It returns what it removed.
func (o *Owner) RemoveStale(vips []netip.Addr) ([]netip.Addr, error) {
	want, _ := normalise(vips) // an unusable address cannot be a VIP left behind
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.claimed {
		return nil, ErrClaimed
	}
	ifi, err := o.links.Interface(o.ifname)
	if err != nil {
		if errors.Is(err, ErrLinkNotFound) {
			o.forgetUnwanted() // the addresses went with the interface
		}
		return nil, fmt.Errorf("remove stale VIPs: look up %s: %w", o.ifname, err)
	}
	prefixes, err := o.links.AddrList(ifi)
	if err != nil {
		return nil, fmt.Errorf("remove stale VIPs: list addresses of %s: %w", o.ifname, err)
	}
	candidates := want
	for addr := range o.vips {
		if !slices.Contains(candidates, addr) {
			candidates = append(candidates, addr)
		}
	}
	slices.SortFunc(candidates, netip.Addr.Compare)
	var removed []netip.Addr
	var errs []error
	for _, addr := range candidates {
		switch lookup(prefixes, addr) {
		case absent:
			o.forgetStale(addr)
		case nodeAddress:
			o.log.Warn("a VIP is one of the interface's own addresses; leaving it", "vip", addr)
			o.forgetStale(addr)
		case hostAddress:
			if err := o.links.AddrDel(ifi, addr); err != nil {
				o.countsOf(addr).removeErrors++
				errs = append(errs, fmt.Errorf("remove stale VIP %s from %s: %w", addr, o.ifname, err))
				continue
			}
			o.forgetStale(addr)
			removed = append(removed, addr)
			o.event(EventStale, addr, time.Now())
		}
	}
	if len(removed) > 0 {
		o.log.Warn("removed stale VIPs", "vips", removed)
	}
	return removed, errors.Join(errs...)
}

// Held returns the addresses this owner has put on the interface and not yet removed,
// sorted.
func (o *Owner) Held() []netip.Addr {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.heldLocked()
}

func (o *Owner) heldLocked() []netip.Addr {
	var held []netip.Addr
	for _, addr := range sortedKeys(o.vips) {
		if o.vips[addr].added {
			held = append(held, addr)
		}
	}
	return held
}

// normalise validates vips and returns them sorted without duplicates, IPv4-mapped IPv6
// addresses turned into IPv4.
// normalise returns the usable VIPs, sorted and unique, and an error (wrapping ErrBadVIP)
// naming each unusable one. One bad address must not cost the others their VIP: the
// callers go on with what is usable.
func normalise(vips []netip.Addr) ([]netip.Addr, error) {
	out := make([]netip.Addr, 0, len(vips))
	var bad []error
	for _, v := range vips {
		u := v.Unmap()
		if !u.IsValid() || u.Zone() != "" || u.IsUnspecified() || u.IsMulticast() ||
			u.IsLoopback() || u.IsLinkLocalUnicast() || u == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
			bad = append(bad, fmt.Errorf("%w: %s", ErrBadVIP, v))
			continue
		}
		out = append(out, u)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out), errors.Join(bad...)
}

func sortedKeys(m map[netip.Addr]*vipState) []netip.Addr {
	keys := make([]netip.Addr, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, netip.Addr.Compare)
	return keys
}
