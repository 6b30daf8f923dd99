package realserver

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
)

// FakeHost is an in-memory Host for tests: links with addresses, a sysctl tree that grows
// and shrinks with its links (a new link copies conf/default, as the kernel does), and a log
// of every change in the order it happened, so tests can pin down ordering (ARP sysctls
// before the VIP) as well as the resulting state.
type FakeHost struct {
	// NoIPIP makes EnsureIPIP fail as on a kernel without the ipip module.
	NoIPIP bool
	// Fail, if set, is asked before every change ("write PATH", "add LINK", "del LINK",
	// "ensure tunl0", "release tunl0", "route DST"); a non-nil result fails that change.
	Fail func(op string) error

	mu      sync.Mutex
	links   map[string]*fakeLink
	sysctls map[string]int
	routes  map[netip.Prefix]Route
	ops     []string
}

type fakeLink struct {
	up    bool
	addrs []Address
}

var fakeConfKeys = []string{"arp_ignore", "arp_announce", "rp_filter"}

// NewFakeHost returns a host with lo and the named links, all up and without addresses,
// and every ARP and rp_filter sysctl at the kernel default 0.
func NewFakeHost(links ...string) *FakeHost {
	f := &FakeHost{links: map[string]*fakeLink{}, sysctls: map[string]int{}, routes: map[netip.Prefix]Route{}}
	for _, k := range fakeConfKeys {
		f.sysctls[confPath("all", k)] = 0
		f.sysctls[confPath("default", k)] = 0
	}
	for _, l := range append([]string{LoopbackLink}, links...) {
		f.addLinkLocked(l)
	}
	return f
}

func (f *FakeHost) addLinkLocked(name string) {
	f.links[name] = &fakeLink{up: true}
	for _, k := range fakeConfKeys {
		f.sysctls[confPath(name, k)] = f.sysctls[confPath("default", k)]
	}
}

// Ops returns the changes made so far, in order.
func (f *FakeHost) Ops() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ops)
}

// ResetOps forgets the recorded changes (the state stays).
func (f *FakeHost) ResetOps() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = nil
}

// Sysctls returns a copy of the whole sysctl tree.
func (f *FakeHost) Sysctls() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.sysctls)
}

// LinkUp reports whether a link exists and is up.
func (f *FakeHost) LinkUp(name string) (exists, up bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.links[name]
	return ok, ok && l.up
}

func (f *FakeHost) change(op string) error {
	if f.Fail != nil {
		if err := f.Fail(op); err != nil {
			return err
		}
	}
	return nil
}

func (f *FakeHost) ReadSysctl(path string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.sysctls[path]
	if !ok {
		return 0, fmt.Errorf("read %s: %w", path, ErrNoSysctl)
	}
	return v, nil
}

func (f *FakeHost) WriteSysctl(path string, value int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	op := fmt.Sprintf("write %s=%d", path, value)
	if err := f.change("write " + path); err != nil {
		return err
	}
	if _, ok := f.sysctls[path]; !ok {
		return fmt.Errorf("write %s: %w", path, ErrNoSysctl)
	}
	f.sysctls[path] = value
	f.ops = append(f.ops, op)
	return nil
}

func (f *FakeHost) Addrs(link string) ([]Address, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.links[link]
	if !ok {
		return nil, fmt.Errorf("list addresses of %s: %w", link, ErrNoLink)
	}
	return slices.Clone(l.addrs), nil
}

func (f *FakeHost) AddAddr(link string, a Address) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.change("add " + link); err != nil {
		return err
	}
	l, ok := f.links[link]
	if !ok {
		return fmt.Errorf("add %s to %s: %w", a.Prefix, link, ErrNoLink)
	}
	if a.Label != "" && !strings.HasPrefix(a.Label, link) {
		return fmt.Errorf("add %s to %s: label %q must start with the link name", a.Prefix, link, a.Label)
	}
	if i := slices.IndexFunc(l.addrs, func(x Address) bool { return x.Prefix == a.Prefix }); i >= 0 {
		l.addrs[i] = a // as AddrReplace
	} else {
		l.addrs = append(l.addrs, a)
	}
	f.ops = append(f.ops, fmt.Sprintf("add %s %s", link, a))
	return nil
}

func (f *FakeHost) DelAddr(link string, a Address) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.change("del " + link); err != nil {
		return err
	}
	l, ok := f.links[link]
	if !ok {
		return fmt.Errorf("delete %s from %s: %w", a.Prefix, link, ErrNoLink)
	}
	l.addrs = slices.DeleteFunc(l.addrs, func(x Address) bool { return x.Prefix == a.Prefix })
	f.ops = append(f.ops, fmt.Sprintf("del %s %s", link, a.Prefix))
	return nil
}

func (f *FakeHost) LinkOf(addr netip.Addr) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, name := range slices.Sorted(maps.Keys(f.links)) {
		for _, a := range f.links[name].addrs {
			if a.Prefix.Addr() == addr {
				return name, nil
			}
		}
	}
	return "", fmt.Errorf("find the link of %s: %w", addr, ErrNoLink)
}

func (f *FakeHost) EnsureIPIP() (IPIPChange, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.change("ensure " + IPIPLink); err != nil {
		return IPIPUnchanged, err
	}
	if f.NoIPIP {
		return IPIPUnchanged, fmt.Errorf("create %s: %w", IPIPLink, ErrNoIPIP)
	}
	change := IPIPUnchanged
	l, existed := f.links[IPIPLink]
	if !existed {
		f.addLinkLocked(IPIPLink)
		l = f.links[IPIPLink]
		l.up = false // a new device starts down, as in the kernel
		f.ops = append(f.ops, "create "+IPIPLink)
		change = IPIPCreated
	}
	if !l.up {
		l.up = true
		f.ops = append(f.ops, "up "+IPIPLink)
		if change == IPIPUnchanged {
			change = IPIPBroughtUp
		}
	}
	return change, nil
}

// AddIPIP creates tunl0, down, as loading the ipip module does, unrecorded.
func (f *FakeHost) AddIPIP() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addLinkLocked(IPIPLink)
	f.links[IPIPLink].up = false
}

func (f *FakeHost) ReleaseIPIP(remove bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.change("release " + IPIPLink); err != nil {
		return err
	}
	l, ok := f.links[IPIPLink]
	if !ok {
		return nil
	}
	if l.up {
		l.up = false
		f.ops = append(f.ops, "down "+IPIPLink)
	}
	if !remove {
		return nil
	}
	delete(f.links, IPIPLink)
	for _, k := range fakeConfKeys {
		delete(f.sysctls, confPath(IPIPLink, k))
	}
	f.ops = append(f.ops, "remove "+IPIPLink)
	return nil
}

func (f *FakeHost) Route(dst netip.Prefix) (Route, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.routes[dst]
	return r, ok, nil
}

func (f *FakeHost) ReplaceRoute(r Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.change("route " + r.Dst.String()); err != nil {
		return err
	}
	f.routes[r.Dst] = r
	f.ops = append(f.ops, "route replace "+r.String())
	return nil
}

func (f *FakeHost) DelRoute(r Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.change("route " + r.Dst.String()); err != nil {
		return err
	}
	if cur, ok := f.routes[r.Dst]; ok && cur.Via == r.Via {
		delete(f.routes, r.Dst)
		f.ops = append(f.ops, "route del "+r.String())
	}
	return nil
}

// Routes returns a copy of the routing table.
func (f *FakeHost) Routes() map[netip.Prefix]Route {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.routes)
}

// PutRoute installs a route behind the agent's back, unrecorded.
func (f *FakeHost) PutRoute(r Route) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes[r.Dst] = r
}

// SetSysctl changes a sysctl behind the agent's back (an operator, or drift), unrecorded.
func (f *FakeHost) SetSysctl(path string, value int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sysctls[path] = value
}

// PutAddr and DropAddr change addresses behind the agent's back, unrecorded.
func (f *FakeHost) PutAddr(link string, a Address) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.links[link]
	l.addrs = append(l.addrs, a)
}

func (f *FakeHost) DropAddr(link string, p netip.Prefix) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.links[link]
	l.addrs = slices.DeleteFunc(l.addrs, func(x Address) bool { return x.Prefix == p })
}

var _ Host = (*FakeHost)(nil)
