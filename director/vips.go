package director

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/raftlvs/raftlvs/director/vip"
	"github.com/raftlvs/raftlvs/fsm"
)

// vipOwners holds one vip.Owner per interface that carries VIPs: the director's VIP
// interface, which carries the services' VIPs and the declared VIPs that name none, and
// each interface a declared VIP names (a VLAN, a second NIC). Owners are made as
// interfaces appear in the state and kept: an owner holds nothing once released.
type vipOwners struct {
	cfg       vip.Config // the VIP interface's; the others differ only in Interface
	links     vip.Links
	announcer vip.Announcer

	mu      sync.Mutex
	owners  map[string]*vip.Owner
	claimed map[string]bool // the owners a claim is in force on
}

func newVIPOwners(cfg vip.Config, links vip.Links, announcer vip.Announcer) (*vipOwners, error) {
	v := &vipOwners{cfg: cfg, links: links, announcer: announcer, owners: map[string]*vip.Owner{}, claimed: map[string]bool{}}
	// The VIP interface's owner is made now, so that a bad config fails New.
	if _, err := v.ownerLocked(cfg.Interface); err != nil {
		return nil, err
	}
	return v, nil
}

func (v *vipOwners) ownerLocked(ifname string) (*vip.Owner, error) {
	if o, ok := v.owners[ifname]; ok {
		return o, nil
	}
	cfg := v.cfg
	cfg.Interface = ifname
	o, err := vip.NewOwner(cfg, v.links, v.announcer)
	if err != nil {
		return nil, err
	}
	v.owners[ifname] = o
	return o, nil
}

// byInterface groups the cluster's VIPs by the interface that carries them.
func (v *vipOwners) byInterface(vips []fsm.VIP) map[string][]netip.Addr {
	out := map[string][]netip.Addr{}
	for _, x := range vips {
		ifname := x.Interface
		if ifname == "" {
			ifname = v.cfg.Interface
		}
		out[ifname] = append(out[ifname], x.Addr())
	}
	return out
}

// hold makes the owners hold exactly vips: a claim (ctx bounds it) on each interface
// that gets VIPs and had none claimed, a change of set on those claimed already (an
// interface whose VIPs all went keeps its claim, holding none).
func (v *vipOwners) hold(ctx context.Context, vips []fsm.VIP) error {
	groups := v.byInterface(vips)
	v.mu.Lock()
	defer v.mu.Unlock()
	var errs []error
	for _, ifname := range sortedNames(groups, v.claimed) {
		o, err := v.ownerLocked(ifname)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if v.claimed[ifname] {
			err = o.SetVIPs(groups[ifname])
		} else {
			v.claimed[ifname] = true
			err = o.Claim(ctx, groups[ifname])
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("VIPs on %s: %w", ifname, err))
		}
	}
	return errors.Join(errs...)
}

// release releases every claim; after it returns no owner announces anything.
func (v *vipOwners) release() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	var errs []error
	for _, ifname := range sortedNames[*vip.Owner, bool](v.owners, nil) {
		if err := v.owners[ifname].Release(); err != nil {
			errs = append(errs, err)
		}
	}
	clear(v.claimed)
	return errors.Join(errs...)
}

// removeStale takes vips off their interfaces (a follower's duty, see RemoveStale).
func (v *vipOwners) removeStale(vips []fsm.VIP) ([]netip.Addr, error) {
	groups := v.byInterface(vips)
	v.mu.Lock()
	defer v.mu.Unlock()
	var removed []netip.Addr
	var errs []error
	for _, ifname := range sortedNames(groups, v.owners) {
		o, err := v.ownerLocked(ifname)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		r, err := o.RemoveStale(groups[ifname])
		if errors.Is(err, vip.ErrLinkNotFound) && ifname != v.cfg.Interface {
			err = nil // a declared VIP's interface this director does not have: nothing there
		}
		removed = append(removed, r...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return removed, errors.Join(errs...)
}

// HeldVIP is a VIP on one of this director's interfaces.
type HeldVIP struct {
	Addr      netip.Addr
	Interface string
}

func (v *vipOwners) held() []HeldVIP {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []HeldVIP
	for _, ifname := range sortedNames[*vip.Owner, bool](v.owners, nil) {
		for _, a := range v.owners[ifname].Held() {
			out = append(out, HeldVIP{Addr: a, Interface: ifname})
		}
	}
	return out
}

// stats are the figures of every VIP any owner has held or tried to hold, by interface.
func (v *vipOwners) stats() []vip.VIPStats {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []vip.VIPStats
	for _, ifname := range sortedNames[*vip.Owner, bool](v.owners, nil) {
		out = append(out, v.owners[ifname].Stats()...)
	}
	return out
}

// sortedNames is the union of two maps' keys, sorted, so that errors and logs come in a
// stable order.
func sortedNames[A, B any](a map[string]A, b map[string]B) []string {
	var names []string
	for k := range a {
		names = append(names, k)
	}
	for k := range b {
		names = append(names, k)
	}
	slices.Sort(names)
	return slices.Compact(names)
}
