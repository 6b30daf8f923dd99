//go:build linux

package vip

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// FenceTable names the nftables tables of the fence (family arp for IPv4, ip6 for
// IPv6). One director per network namespace owns them.
const FenceTable = "raftlvs_fence"

// nfARPOut is NF_ARP_OUT (linux/netfilter_arp.h), which x/sys/unix lacks; the arp
// family numbers its hooks apart from the inet ones.
const nfARPOut = 1

// ErrNoFence means the kernel cannot host the fence (no nf_tables, or no arp family).
var ErrNoFence = errors.New("VIP fence unavailable")

// NftFence is the Fence in the kernel: two nftables tables named FenceTable, each with a
// set of the guarded VIPs and a set of the live ones whose elements carry a timeout, and
// an output chain that drops what would tell the segment where a guarded VIP lives while
// it is not live:
//
//   - arp: every ARP packet (reply or request: Linux updates an existing neighbour entry
//     from either) whose sender IP is guarded and not live;
//   - ip6: every neighbour advertisement whose target is guarded and not live, and every
//     neighbour solicitation whose source is (its source link-layer option updates the
//     receiver's entry too).
//
// The kernel expires the live elements by itself, so a frozen process stops being
// answered for within one lease. Announcements sent on raw packet sockets (gratuitous
// ARP) bypass netfilter; NDP's ICMPv6 sockets do not, which is why the owner renews a
// lease before it announces.
//
// Renewals replace the live set as a whole (flush, then add, in one atomic batch): the
// kernel before 6.10 ignores a new timeout on an element that exists, and deleting one
// that has just expired would fail the batch. NftFence keeps each address's lease end
// itself, so that several owners can share it.
type NftFence struct {
	nsfd int // -1: the caller's namespace
	log  *slog.Logger

	mu        sync.Mutex
	conn      *nftables.Conn
	installed bool
	guarded   map[netip.Addr]time.Time // each guarded address's lease end
	t4, t6    *nftables.Table
	sets      fenceSets
}

type fenceSets struct{ vips4, live4, vips6, live6 *nftables.Set }

// NewNftFence opens the fence in ns (the caller's namespace when ns is not open; the
// caller keeps ns open while the fence is in use). It checks that the kernel takes the
// whole table, chains and rules included, by installing it once, and removes it again
// unless a crashed director left one behind: the addresses that one guarded stay guarded,
// and silent (no lease), until the owner claims them or RemoveStale takes them off the
// interface and out of the fence, so that a VIP left on the interface by a kill -9 does
// not start answering again when the director restarts. A kernel without nf_tables
// fails with ErrNoFence.
func NewNftFence(ns netns.NsHandle, log *slog.Logger) (*NftFence, error) {
	f := &NftFence{nsfd: -1, log: cmpLogger(log), guarded: make(map[netip.Addr]time.Time)}
	if ns.IsOpen() {
		f.nsfd = int(ns)
	}
	if err := f.dial(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoFence, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	stale := f.staleLocked()
	for _, a := range stale {
		f.guarded[a] = time.Time{}
	}
	if err := f.installLocked(); err != nil {
		f.conn.CloseLasting()
		return nil, fmt.Errorf("%w: install the nftables tables: %w", ErrNoFence, err)
	}
	if len(stale) > 0 {
		f.log.Warn("VIP fence: a previous director's tables guarded VIPs; they stay silent until claimed or removed as stale", "vips", stale)
		return f, nil
	}
	if err := f.uninstallLocked(); err != nil {
		f.conn.CloseLasting()
		return nil, fmt.Errorf("%w: remove the nftables tables: %w", ErrNoFence, err)
	}
	return f, nil
}

// staleLocked lists the addresses in the vips sets of tables already there (none when
// there are none, or they cannot be read: the install replaces them regardless).
func (f *NftFence) staleLocked() []netip.Addr {
	var out []netip.Addr
	for _, family := range []nftables.TableFamily{nftables.TableFamilyARP, nftables.TableFamilyIPv6} {
		t := &nftables.Table{Family: family, Name: FenceTable}
		set, err := f.conn.GetSetByName(t, "vips")
		if err != nil {
			continue
		}
		elems, err := f.conn.GetSetElements(set)
		if err != nil {
			continue
		}
		for _, e := range elems {
			if a, ok := netip.AddrFromSlice(e.Key); ok {
				out = append(out, a.Unmap())
			}
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

func cmpLogger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}

func (f *NftFence) dial() error {
	opts := []nftables.ConnOption{nftables.AsLasting()}
	if f.nsfd >= 0 {
		opts = append(opts, nftables.WithNetNSFd(f.nsfd))
	}
	conn, err := nftables.New(opts...)
	if err != nil {
		return fmt.Errorf("open nftables netlink socket: %w", err)
	}
	f.conn = conn
	return nil
}

// Close removes the tables and closes the netlink socket.
func (f *NftFence) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.guarded)
	err := f.uninstallLocked()
	return errors.Join(err, f.conn.CloseLasting())
}

// Guard implements Fence.
func (f *NftFence) Guard(addr netip.Addr, ttl time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	before, was := f.guarded[addr]
	undo := func() {
		// What the kernel still has: a previous director's guard stays.
		if was {
			f.guarded[addr] = before
		} else {
			delete(f.guarded, addr)
		}
	}
	f.guarded[addr] = time.Now().Add(ttl)
	if !f.installed {
		if err := f.installLocked(); err != nil {
			undo()
			return fmt.Errorf("VIP fence: guard %s: %w", addr, err)
		}
		return nil
	}
	vips := f.sets.vips4
	if addr.Is6() {
		vips = f.sets.vips6
	}
	err := f.flush(func() error {
		if err := f.conn.SetAddElements(vips, []nftables.SetElement{{Key: addr.AsSlice()}}); err != nil {
			return err
		}
		return f.liveLocked()
	})
	if err != nil {
		undo()
		return fmt.Errorf("VIP fence: guard %s: %w", addr, err)
	}
	return nil
}

// Renew implements Fence.
func (f *NftFence) Renew(addrs []netip.Addr, ttl time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	end := time.Now().Add(ttl)
	changed := false
	for _, a := range addrs {
		if _, ok := f.guarded[a]; ok {
			f.guarded[a], changed = end, true
		}
	}
	if !changed || !f.installed {
		return nil
	}
	if err := f.flush(f.liveLocked); err != nil {
		return fmt.Errorf("VIP fence: renew %v: %w", addrs, err)
	}
	return nil
}

// Unguard implements Fence. The last address out takes the tables with it.
func (f *NftFence) Unguard(addr netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.guarded[addr]; !ok {
		return nil
	}
	delete(f.guarded, addr)
	if len(f.guarded) == 0 {
		if err := f.uninstallLocked(); err != nil {
			return fmt.Errorf("VIP fence: unguard %s: %w", addr, err)
		}
		return nil
	}
	if !f.installed {
		return nil
	}
	vips := f.sets.vips4
	if addr.Is6() {
		vips = f.sets.vips6
	}
	err := f.flush(func() error {
		// Added first so that the delete cannot fail on an element someone removed.
		elem := []nftables.SetElement{{Key: addr.AsSlice()}}
		if err := f.conn.SetAddElements(vips, elem); err != nil {
			return err
		}
		if err := f.conn.SetDeleteElements(vips, elem); err != nil {
			return err
		}
		return f.liveLocked()
	})
	if err != nil {
		return fmt.Errorf("VIP fence: unguard %s: %w", addr, err)
	}
	return nil
}

// flush sends the batch that queue builds. A table that vanished (`nft flush ruleset`
// by a firewall reload) is installed again, whole, from what the fence knows.
func (f *NftFence) flush(queue func() error) error {
	if err := queue(); err != nil {
		return fmt.Errorf("build nftables batch: %w", err)
	}
	err := f.conn.Flush()
	if err == nil {
		return nil
	}
	f.redial()
	if !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("nftables batch: %w", err)
	}
	f.log.Warn("VIP fence: its nftables tables were removed by someone else; installing them again", "err", err)
	if err := f.installLocked(); err != nil {
		return fmt.Errorf("reinstall the nftables tables: %w", err)
	}
	return nil
}

// redial replaces the netlink socket after a failed batch, which may leave unread
// answers in it.
func (f *NftFence) redial() {
	old := f.conn
	if err := f.dial(); err != nil {
		f.log.Warn("VIP fence: reopen the nftables socket", "err", err)
		return
	}
	old.CloseLasting()
}

// liveLocked queues the replacement of the live sets' elements by every lease that has
// not run out, each with what is left of it. The kernel counts timeouts in milliseconds
// (rounded up to its tick): what is left is rounded down, and an element with no timeout
// would never expire, so less than a millisecond is not live.
func (f *NftFence) liveLocked() error {
	f.conn.FlushSet(f.sets.live4)
	f.conn.FlushSet(f.sets.live6)
	var live4, live6 []nftables.SetElement
	now := time.Now()
	for _, addr := range sortedAddrs(f.guarded) {
		left := f.guarded[addr].Sub(now).Truncate(time.Millisecond)
		if left < time.Millisecond {
			continue
		}
		e := nftables.SetElement{Key: addr.AsSlice(), Timeout: left}
		if addr.Is4() {
			live4 = append(live4, e)
		} else {
			live6 = append(live6, e)
		}
	}
	if len(live4) > 0 {
		if err := f.conn.SetAddElements(f.sets.live4, live4); err != nil {
			return err
		}
	}
	if len(live6) > 0 {
		if err := f.conn.SetAddElements(f.sets.live6, live6); err != nil {
			return err
		}
	}
	return nil
}

// installLocked replaces both tables, whatever is there, with the fence's, holding the
// addresses it guards: add, delete, add in one batch is the atomic "replace".
func (f *NftFence) installLocked() error {
	f.t4 = &nftables.Table{Family: nftables.TableFamilyARP, Name: FenceTable}
	f.t6 = &nftables.Table{Family: nftables.TableFamilyIPv6, Name: FenceTable}
	for _, t := range []*nftables.Table{f.t4, f.t6} {
		f.conn.AddTable(t)
		f.conn.DelTable(t)
		f.conn.AddTable(t)
	}
	f.sets = fenceSets{
		vips4: &nftables.Set{Table: f.t4, Name: "vips", KeyType: nftables.TypeIPAddr},
		live4: &nftables.Set{Table: f.t4, Name: "live", KeyType: nftables.TypeIPAddr, HasTimeout: true},
		vips6: &nftables.Set{Table: f.t6, Name: "vips", KeyType: nftables.TypeIP6Addr},
		live6: &nftables.Set{Table: f.t6, Name: "live", KeyType: nftables.TypeIP6Addr, HasTimeout: true},
	}
	var vips4, vips6 []nftables.SetElement
	for _, addr := range sortedAddrs(f.guarded) {
		if addr.Is4() {
			vips4 = append(vips4, nftables.SetElement{Key: addr.AsSlice()})
		} else {
			vips6 = append(vips6, nftables.SetElement{Key: addr.AsSlice()})
		}
	}
	err := errors.Join(
		f.conn.AddSet(f.sets.vips4, vips4),
		f.conn.AddSet(f.sets.live4, nil),
		f.conn.AddSet(f.sets.vips6, vips6),
		f.conn.AddSet(f.sets.live6, nil),
	)
	if err != nil {
		return fmt.Errorf("build nftables sets: %w", err)
	}
	if err := f.liveLocked(); err != nil {
		return fmt.Errorf("build nftables set elements: %w", err)
	}
	accept := nftables.ChainPolicyAccept
	arpOut := f.conn.AddChain(&nftables.Chain{Name: "output", Table: f.t4, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookRef(nfARPOut), Priority: nftables.ChainPriorityFilter, Policy: &accept})
	ip6Out := f.conn.AddChain(&nftables.Chain{Name: "output", Table: f.t6, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	f.conn.AddRule(&nftables.Rule{Table: f.t4, Chain: arpOut, Exprs: arpRule(f.sets.vips4, f.sets.live4)})
	f.conn.AddRule(&nftables.Rule{Table: f.t6, Chain: ip6Out, Exprs: ndpRule(136, expr.PayloadBaseTransportHeader, 8, f.sets.vips6, f.sets.live6)})
	f.conn.AddRule(&nftables.Rule{Table: f.t6, Chain: ip6Out, Exprs: ndpRule(135, expr.PayloadBaseNetworkHeader, 8, f.sets.vips6, f.sets.live6)})
	if err := f.conn.Flush(); err != nil {
		f.redial()
		return fmt.Errorf("nftables batch: %w", err)
	}
	f.installed = true
	return nil
}

// uninstallLocked deletes both tables if they are there (add then delete cannot fail on
// a missing one).
func (f *NftFence) uninstallLocked() error {
	for _, family := range []nftables.TableFamily{nftables.TableFamilyARP, nftables.TableFamilyIPv6} {
		t := &nftables.Table{Family: family, Name: FenceTable}
		f.conn.AddTable(t)
		f.conn.DelTable(t)
	}
	if err := f.conn.Flush(); err != nil {
		f.redial()
		return fmt.Errorf("delete the nftables tables: %w", err)
	}
	f.installed = false
	return nil
}

// arpRule: an Ethernet/IPv4 ARP packet (htype 1, ptype 0x0800, hlen 6, plen 4) whose
// sender IP (offset 14) is in vips and not in live is dropped.
func arpRule(vips, live *nftables.Set) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 0, Len: 6},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0, 1, 8, 0, 6, 4}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 14, Len: 4},
		&expr.Lookup{SourceRegister: 1, SetName: vips.Name, SetID: vips.ID},
		&expr.Lookup{SourceRegister: 1, SetName: live.Name, SetID: live.ID, Invert: true},
		&expr.Counter{},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
}

// ndpRule: an ICMPv6 message of type typ whose address at offset in base (the NA's
// target, transport offset 8; the NS's source, network offset 8) is in vips and not in
// live is dropped.
func ndpRule(typ byte, base expr.PayloadBase, offset uint32, vips, live *nftables.Set) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_ICMPV6}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{typ}},
		&expr.Payload{DestRegister: 1, Base: base, Offset: offset, Len: 16},
		&expr.Lookup{SourceRegister: 1, SetName: vips.Name, SetID: vips.ID},
		&expr.Lookup{SourceRegister: 1, SetName: live.Name, SetID: live.ID, Invert: true},
		&expr.Counter{},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
}

func sortedAddrs(m map[netip.Addr]time.Time) []netip.Addr {
	out := make([]netip.Addr, 0, len(m))
	for a := range m {
		out = append(out, a)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}
