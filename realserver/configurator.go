package realserver

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
)

// Configurator converges the real server's kernel to the bindings it serves: VIPs on lo
// (DR) or tunl0 (TUN) and the sysctls they need. It changes only what is missing, records
// every change with the value it replaced (persisted in the state file), and Undo puts back
// exactly that, so an operator's own settings survive the agent.
type Configurator struct {
	host      Host
	iface     string
	natRoute  Route
	stateFile string
	log       *slog.Logger

	mu sync.Mutex
	j  journal
}

// ConfiguratorConfig configures a Configurator.
type ConfiguratorConfig struct {
	// Interface is the egress interface whose ARP sysctls DR and TUN raise.
	Interface string
	// StateFile records what the Configurator changed; "" keeps it in memory only, which
	// forgets the operator's original values if the agent crashes.
	StateFile string
	// NATRoute, if Via is set, is installed while a NAT binding of its family is served:
	// the route back to clients through a director (Dst "" is the default route). It
	// replaces a route to the same destination, which Undo puts back.
	NATRoute Route
	Logger   *slog.Logger
}

// NewConfigurator loads the state file, if any: what an earlier run changed stays the
// agent's to undo, with the originals that run recorded.
func NewConfigurator(host Host, cfg ConfiguratorConfig) (*Configurator, error) {
	j, err := loadJournal(cfg.StateFile)
	if err != nil {
		return nil, err
	}
	if r := &cfg.NATRoute; r.Via.IsValid() {
		r.Via = r.Via.Unmap()
		if !r.Dst.IsValid() {
			r.Dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
			if r.Via.Is6() {
				r.Dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
			}
		}
		if r.Dst.Addr().Is4() != r.Via.Is4() {
			return nil, fmt.Errorf("NAT route %s mixes address families: %w", r, ErrBadSpec)
		}
		r.Dst = r.Dst.Masked()
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Configurator{host: host, iface: cfg.Interface, natRoute: cfg.NATRoute, stateFile: cfg.StateFile, log: log, j: j}, nil
}

// Converge makes the host serve exactly these bindings, repairing whatever drifted (a VIP
// removed, a sysctl lowered) and removing what the agent added for bindings no longer
// wanted. It is idempotent. It does as much as it can and returns every error joined.
func (c *Configurator) Converge(bindings []Binding) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, planErr := planFor(bindings, c.iface, c.natRoute)
	return errors.Join(planErr, c.converge(&p))
}

// Undo removes what the agent added and restores every sysctl it changed, newest first:
// the VIPs go before the ARP sysctls return to values that would announce them.
func (c *Configurator) Undo() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.converge(&plan{})
}

func (c *Configurator) converge(p *plan) error {
	var errs []error
	// Addresses no longer wanted go first, so a VIP moving between lo and tunl0 is never
	// on both and nothing is left announced while its sysctls are restored below.
	errs = append(errs, c.removeAddrs(p)...)

	ipipOK := true
	if p.ipip {
		if err := c.ensureIPIP(); err != nil {
			errs = append(errs, err)
			ipipOK = false
		}
	}

	// Every sysctl before any address: a VIP added while arp_ignore is still 0 is answered
	// for on the wire, and routers cache our MAC for it (Seesaw #111).
	arpOK, tunOK := true, ipipOK
	for _, w := range p.sysctls {
		if w.tun && !ipipOK {
			continue
		}
		if err := c.applySysctl(w); err != nil {
			errs = append(errs, err)
			if w.tun {
				tunOK = false
			} else {
				arpOK = false
			}
		}
	}
	for _, la := range p.addrs {
		switch {
		case !arpOK && la.addr.Prefix.Addr().Is4():
			errs = append(errs, fmt.Errorf("not adding %s to %s: its ARP sysctls are not in place", la.addr.Prefix, la.link))
		case la.link == IPIPLink && !tunOK:
			errs = append(errs, fmt.Errorf("not adding %s to %s: the tunnel is not ready", la.addr.Prefix, la.link))
		default:
			if err := c.addAddr(la.link, la.addr); err != nil {
				errs = append(errs, err)
			}
		}
	}

	for _, r := range p.routes {
		if err := c.applyRoute(r); err != nil {
			errs = append(errs, err)
		}
	}

	errs = append(errs, c.restoreRoutes(p)...)
	errs = append(errs, c.restoreSysctls(p)...)
	if !p.ipip && c.j.IPIP != IPIPUnchanged {
		if err := c.releaseIPIP(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *Configurator) persist() error {
	if err := saveJournal(c.stateFile, &c.j); err != nil {
		return fmt.Errorf("record host changes: %w", err)
	}
	return nil
}

func (c *Configurator) removeAddrs(p *plan) []error {
	var errs []error
	for i := len(c.j.Addrs) - 1; i >= 0; i-- {
		r := c.j.Addrs[i]
		if p.wantsAddr(r.Link, r.Address) {
			continue
		}
		err := c.host.DelAddr(r.Link, r.Address)
		if err != nil && !errors.Is(err, ErrNoLink) { // a vanished link took the address along
			errs = append(errs, fmt.Errorf("remove %s from %s: %w", r.Address.Prefix, r.Link, err))
			continue
		}
		c.log.Info("removed VIP", "link", r.Link, "address", r.Address.Prefix)
		c.j.Addrs = slices.Delete(c.j.Addrs, i, i+1)
		if err := c.persist(); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

func (c *Configurator) ensureIPIP() error {
	// Recorded after the fact: the host reports what it did only once it is done. A crash
	// in between leaves tunl0 up after undo, which is harmless without a VIP on it.
	change, err := c.host.EnsureIPIP()
	if err != nil {
		return fmt.Errorf("bring up %s: %w", IPIPLink, err)
	}
	// The first change is what undo must revert: a device the agent created stays
	// "created" even if it is later found down and brought up again.
	if change != IPIPUnchanged && c.j.IPIP != IPIPCreated {
		c.log.Info("tunnel device", "link", IPIPLink, "change", change)
		c.j.IPIP = change
		return c.persist()
	}
	return nil
}

func (c *Configurator) applySysctl(w sysctlWant) error {
	cur, err := c.host.ReadSysctl(w.path)
	if err != nil {
		return fmt.Errorf("read sysctl: %w", err)
	}
	if w.ok(cur) {
		return nil
	}
	// Record before writing. A record that already exists keeps its original: the
	// current value may be one this agent wrote before it crashed, or drift.
	rec := c.j.sysctl(w.path)
	if rec == nil {
		c.j.Sysctls = append(c.j.Sysctls, sysctlChange{Path: w.path, Original: cur, Value: w.target})
	} else {
		rec.Value = w.target
	}
	if err := c.persist(); err != nil {
		return err
	}
	if err := c.host.WriteSysctl(w.path, w.target); err != nil {
		return fmt.Errorf("set %s to %d: %w", w.path, w.target, err)
	}
	c.log.Info("set sysctl", "path", w.path, "from", cur, "to", w.target)
	return nil
}

func (c *Configurator) addAddr(link string, a Address) error {
	present, err := c.host.Addrs(link)
	if err != nil {
		return fmt.Errorf("add %s to %s: %w", a.Prefix, link, err)
	}
	// An address already there is left as it is: either this agent added it before a
	// restart (the journal says so), or the operator did and it stays theirs.
	if slices.ContainsFunc(present, func(x Address) bool { return x.Prefix.Addr() == a.Prefix.Addr() }) {
		return nil
	}
	if !c.j.hasAddr(link, a) {
		c.j.Addrs = append(c.j.Addrs, addrChange{Link: link, Address: a})
		if err := c.persist(); err != nil {
			return err
		}
	}
	if err := c.host.AddAddr(link, a); err != nil {
		return fmt.Errorf("add %s to %s: %w", a.Prefix, link, err)
	}
	c.log.Info("added VIP", "link", link, "address", a)
	return nil
}

// restoreSysctls puts back, newest first, the originals of the sysctls no longer wanted.
// A value someone changed after the agent is theirs now and is left alone.
func (c *Configurator) restoreSysctls(p *plan) []error {
	var errs []error
	for i := len(c.j.Sysctls) - 1; i >= 0; i-- {
		r := c.j.Sysctls[i]
		if p.wantsSysctl(r.Path) {
			continue
		}
		cur, err := c.host.ReadSysctl(r.Path)
		switch {
		case errors.Is(err, ErrNoSysctl):
			// Its interface is gone, and the value with it.
		case err != nil:
			errs = append(errs, fmt.Errorf("read sysctl: %w", err))
			continue
		case cur != r.Value:
			c.log.Warn("sysctl changed by someone else since the agent set it; leaving it", "path", r.Path, "agent_set", r.Value, "now", cur, "original", r.Original)
		default:
			if err := c.host.WriteSysctl(r.Path, r.Original); err != nil {
				errs = append(errs, fmt.Errorf("restore %s to %d: %w", r.Path, r.Original, err))
				continue
			}
			c.log.Info("restored sysctl", "path", r.Path, "to", r.Original)
		}
		c.j.Sysctls = slices.Delete(c.j.Sysctls, i, i+1)
		if err := c.persist(); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

func (c *Configurator) applyRoute(r Route) error {
	cur, ok, err := c.host.Route(r.Dst)
	if err != nil {
		return fmt.Errorf("look up route to %s: %w", r.Dst, err)
	}
	if ok && cur.Via == r.Via {
		return nil
	}
	if c.j.route(r.Dst) == nil {
		rec := routeChange{Route: r}
		if ok {
			rec.Original = &cur
		}
		c.j.Routes = append(c.j.Routes, rec)
		if err := c.persist(); err != nil {
			return err
		}
	}
	if err := c.host.ReplaceRoute(r); err != nil {
		return fmt.Errorf("install route %s: %w", r, err)
	}
	c.log.Info("installed NAT route", "route", r)
	return nil
}

// restoreRoutes removes the routes no longer wanted and puts back the ones they replaced,
// unless someone changed the route since.
func (c *Configurator) restoreRoutes(p *plan) []error {
	var errs []error
	for i := len(c.j.Routes) - 1; i >= 0; i-- {
		rec := c.j.Routes[i]
		if p.wantsRoute(rec.Route) {
			continue
		}
		cur, ok, err := c.host.Route(rec.Route.Dst)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("look up route to %s: %w", rec.Route.Dst, err))
			continue
		case ok && cur.Via != rec.Route.Via:
			c.log.Warn("route changed by someone else since the agent set it; leaving it", "route", cur, "agent_set", rec.Route)
		case rec.Original != nil:
			if err := c.host.ReplaceRoute(*rec.Original); err != nil {
				errs = append(errs, fmt.Errorf("restore route %s: %w", rec.Original, err))
				continue
			}
		case ok:
			if err := c.host.DelRoute(rec.Route); err != nil {
				errs = append(errs, fmt.Errorf("remove route %s: %w", rec.Route, err))
				continue
			}
		}
		c.j.Routes = slices.Delete(c.j.Routes, i, i+1)
		if err := c.persist(); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

func (c *Configurator) releaseIPIP() error {
	remove := c.j.IPIP == IPIPCreated
	if err := c.host.ReleaseIPIP(remove); err != nil {
		return fmt.Errorf("release %s: %w", IPIPLink, err)
	}
	c.log.Info("released tunnel device", "link", IPIPLink, "removed", remove)
	c.j.IPIP = IPIPUnchanged
	return c.persist()
}
