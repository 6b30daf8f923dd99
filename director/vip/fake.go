package vip

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// FakeLinks is an in-memory Links for tests: a set of interfaces and their addresses.
// Tests change it behind the owner's back the way an operator would (AddPrefix,
// RemovePrefix, RemoveLink) and inject failures with Fail.
type FakeLinks struct {
	mu        sync.Mutex
	links     map[string]*fakeLink
	nextIndex int
	failures  map[fakeFailure]error
}

type fakeLink struct {
	ifi      Interface
	prefixes []netip.Prefix
}

// LinkOp names a Links operation for FakeLinks.Fail.
type LinkOp string

// The operations FakeLinks can fail.
const (
	OpInterface   LinkOp = "interface"
	OpAddrReplace LinkOp = "addr-replace"
	OpAddrDel     LinkOp = "addr-del"
	OpAddrList    LinkOp = "addr-list"
)

type fakeFailure struct {
	op   LinkOp
	addr netip.Addr // zero for OpInterface and OpAddrList
}

// NewFakeLinks returns a FakeLinks without interfaces.
func NewFakeLinks() *FakeLinks {
	return &FakeLinks{links: make(map[string]*fakeLink), nextIndex: 1, failures: make(map[fakeFailure]error)}
}

// AddLink creates an interface with the given addresses and returns it.
func (f *FakeLinks) AddLink(name string, mac net.HardwareAddr, prefixes ...netip.Prefix) Interface {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextIndex++
	ifi := Interface{Name: name, Index: f.nextIndex, HardwareAddr: slices.Clone(mac)}
	f.links[name] = &fakeLink{ifi: ifi, prefixes: slices.Clone(prefixes)}
	return ifi
}

// RemoveLink deletes an interface and its addresses.
func (f *FakeLinks) RemoveLink(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.links, name)
}

// AddPrefix puts p on the interface as `ip addr add` would.
func (f *FakeLinks) AddPrefix(name string, p netip.Prefix) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if l := f.links[name]; l != nil && !slices.Contains(l.prefixes, p) {
		l.prefixes = append(l.prefixes, p)
	}
}

// RemovePrefix takes every prefix of addr off the interface as `ip addr del` would.
func (f *FakeLinks) RemovePrefix(name string, addr netip.Addr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if l := f.links[name]; l != nil {
		l.prefixes = slices.DeleteFunc(l.prefixes, func(p netip.Prefix) bool { return p.Addr() == addr })
	}
}

// Prefixes returns the addresses on an interface, sorted.
func (f *FakeLinks) Prefixes(name string) []netip.Prefix {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.links[name]
	if l == nil {
		return nil
	}
	out := slices.Clone(l.prefixes)
	slices.SortFunc(out, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	return out
}

// Fail makes op on addr (the zero Addr for OpInterface and OpAddrList) return err until
// it is called again with a nil err.
func (f *FakeLinks) Fail(op LinkOp, addr netip.Addr, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := fakeFailure{op, addr}
	if err == nil {
		delete(f.failures, k)
		return
	}
	f.failures[k] = err
}

// Interface implements Links.
func (f *FakeLinks) Interface(name string) (Interface, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failures[fakeFailure{op: OpInterface}]; err != nil {
		return Interface{}, err
	}
	l := f.links[name]
	if l == nil {
		return Interface{}, fmt.Errorf("%s: %w", name, ErrLinkNotFound)
	}
	return l.ifi, nil
}

// link finds ifi by index as the kernel would; a stale index is a missing link.
func (f *FakeLinks) link(ifi Interface) (*fakeLink, error) {
	for _, l := range f.links {
		if l.ifi.Index == ifi.Index {
			return l, nil
		}
	}
	return nil, fmt.Errorf("index %d: %w", ifi.Index, ErrLinkNotFound)
}

// AddrReplace implements Links; like the kernel for IPv6 it replaces any other prefix
// of the same address.
func (f *FakeLinks) AddrReplace(ifi Interface, addr netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failures[fakeFailure{OpAddrReplace, addr}]; err != nil {
		return err
	}
	l, err := f.link(ifi)
	if err != nil {
		return err
	}
	host := netip.PrefixFrom(addr, addr.BitLen())
	l.prefixes = slices.DeleteFunc(l.prefixes, func(p netip.Prefix) bool {
		return p == host || (addr.Is6() && p.Addr() == addr)
	})
	l.prefixes = append(l.prefixes, host)
	return nil
}

// AddrDel implements Links.
func (f *FakeLinks) AddrDel(ifi Interface, addr netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failures[fakeFailure{OpAddrDel, addr}]; err != nil {
		return err
	}
	l, err := f.link(ifi)
	if err != nil {
		return err
	}
	host := netip.PrefixFrom(addr, addr.BitLen())
	l.prefixes = slices.DeleteFunc(l.prefixes, func(p netip.Prefix) bool { return p == host })
	return nil
}

// AddrList implements Links.
func (f *FakeLinks) AddrList(ifi Interface) ([]netip.Prefix, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failures[fakeFailure{op: OpAddrList}]; err != nil {
		return nil, err
	}
	l, err := f.link(ifi)
	if err != nil {
		return nil, err
	}
	return slices.Clone(l.prefixes), nil
}

// AnnouncementKind says which message an Announcement was.
type AnnouncementKind string

// The announcement kinds.
const (
	GratuitousARP AnnouncementKind = "garp"
	UnsolicitedNA AnnouncementKind = "na"
)

// Announcement is one call to a FakeAnnouncer.
type Announcement struct {
	At        time.Time // time.Now() when sent (the fake clock under testing/synctest)
	Kind      AnnouncementKind
	Interface string
	Addr      netip.Addr
}

// FakeAnnouncer records announcements. Like the real sockets it refuses the wrong
// family and, when it watches a FakeLinks, an address the interface does not hold, so a
// test catches an announcement before the add or after the release.
type FakeAnnouncer struct {
	mu       sync.Mutex
	links    *FakeLinks // nil: no check
	sent     []Announcement
	failures map[netip.Addr]error
}

// NewFakeAnnouncer returns a FakeAnnouncer that checks addresses against links (nil for no
// check).
func NewFakeAnnouncer(links *FakeLinks) *FakeAnnouncer {
	return &FakeAnnouncer{links: links, failures: make(map[netip.Addr]error)}
}

// Fail makes announcements of addr fail with err until called with a nil err.
func (a *FakeAnnouncer) Fail(addr netip.Addr, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err == nil {
		delete(a.failures, addr)
		return
	}
	a.failures[addr] = err
}

// Sent returns the announcements so far, oldest first.
func (a *FakeAnnouncer) Sent() []Announcement {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.sent)
}

// GratuitousARP implements Announcer.
func (a *FakeAnnouncer) GratuitousARP(ifi Interface, addr netip.Addr) error {
	if !addr.Is4() {
		return fmt.Errorf("gratuitous ARP for non-IPv4 %s", addr)
	}
	return a.record(GratuitousARP, ifi, addr)
}

// UnsolicitedNA implements Announcer.
func (a *FakeAnnouncer) UnsolicitedNA(ifi Interface, addr netip.Addr) error {
	if !addr.Is6() {
		return fmt.Errorf("neighbour advertisement for non-IPv6 %s", addr)
	}
	return a.record(UnsolicitedNA, ifi, addr)
}

func (a *FakeAnnouncer) record(kind AnnouncementKind, ifi Interface, addr netip.Addr) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.failures[addr]; err != nil {
		return err
	}
	if a.links != nil {
		host := netip.PrefixFrom(addr, addr.BitLen())
		if !slices.Contains(a.links.Prefixes(ifi.Name), host) {
			return fmt.Errorf("%s on %s: %w", addr, ifi.Name, ErrAddrNotOnInterface)
		}
	}
	a.sent = append(a.sent, Announcement{At: time.Now(), Kind: kind, Interface: ifi.Name, Addr: addr})
	return nil
}

// FakeFence is an in-memory Fence: which addresses are guarded and until when each is
// live, on the clock of time.Now (testing/synctest's fake one in the tests). Answers says
// whether a kernel would answer ARP for an address, the property the fence is for.
type FakeFence struct {
	mu       sync.Mutex
	guarded  map[netip.Addr]time.Time // the end of each guarded address's lease
	renewals map[netip.Addr][]time.Time
	err      error
}

// NewFakeFence returns a FakeFence that guards nothing.
func NewFakeFence() *FakeFence {
	return &FakeFence{guarded: make(map[netip.Addr]time.Time), renewals: make(map[netip.Addr][]time.Time)}
}

// Fail makes every call fail with err until called with a nil err.
func (f *FakeFence) Fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

// Guard implements Fence.
func (f *FakeFence) Guard(addr netip.Addr, ttl time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.renewLocked(addr, ttl)
	return nil
}

// Renew implements Fence.
func (f *FakeFence) Renew(addrs []netip.Addr, ttl time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	for _, a := range addrs {
		if _, ok := f.guarded[a]; ok {
			f.renewLocked(a, ttl)
		}
	}
	return nil
}

func (f *FakeFence) renewLocked(addr netip.Addr, ttl time.Duration) {
	now := time.Now()
	f.guarded[addr] = now.Add(max(ttl, 0))
	if ttl > 0 {
		f.renewals[addr] = append(f.renewals[addr], now)
	}
}

// Unguard implements Fence.
func (f *FakeFence) Unguard(addr netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	delete(f.guarded, addr)
	return nil
}

// Guarded reports whether addr is under the fence.
func (f *FakeFence) Guarded(addr netip.Addr) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.guarded[addr]
	return ok
}

// LiveUntil is the end of addr's lease (zero when not guarded).
func (f *FakeFence) LiveUntil(addr netip.Addr) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.guarded[addr]
}

// Answers reports whether the kernel would answer ARP (or a neighbour solicitation) for
// addr now, were addr on the interface: unguarded, or guarded and live.
func (f *FakeFence) Answers(addr netip.Addr) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	until, ok := f.guarded[addr]
	return !ok || time.Now().Before(until)
}

// Renewals returns when addr's lease was started or renewed, oldest first.
func (f *FakeFence) Renewals(addr netip.Addr) []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.renewals[addr])
}
