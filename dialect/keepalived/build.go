package keepalived

import (
	"cmp"
	"encoding/json"
	"math"
	"net/netip"
	"strings"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// keepalived's defaults (keepalived.conf(5); check_data.c alloc_vs, check_api.c).
const (
	defaultDelayLoop      = 60 * time.Second
	defaultConnectTimeout = 5 * time.Second
)

// build turns what was read into the plan.
func (t *translator) build() *Plan {
	plan := &Plan{}
	for _, vs := range t.servers {
		if len(t.errs) >= t.lim.Errors {
			break
		}
		t.buildService(plan, vs)
	}
	for _, g := range t.groupSeq {
		if !g.used && len(g.entries) > 0 {
			t.report(g.node.Pos(), Unmapped, "virtual_server_group "+g.name, "no virtual_server uses the group")
		}
	}
	vips := map[netip.Addr]bool{}
	for _, s := range plan.Services {
		if s.VIP.IsValid() {
			vips[s.VIP] = true
		}
	}
	for i := range t.vips {
		v := &t.vips[i]
		v.Used = vips[v.Addr]
		if !v.Used {
			t.report(v.Pos, Note, "virtual_ipaddress", "%s (vrrp_instance %s) is the address of no virtual_server: raftlvs will not hold it", v.Addr, v.Instance)
		}
	}
	plan.VIPs = t.vips
	return plan
}

// match is what one service of a virtual_server matches: an address and port, or a mark.
type match struct {
	vip    netip.Addr
	port   uint16
	fwmark uint32
	family fsm.Family
	at     Pos
}

func (t *translator) matchesOf(vs *vsConf) []match {
	at := vs.node.Pos()
	switch {
	case vs.group != nil:
		g := t.groups[vs.group.Text]
		if g == nil {
			t.fail(errorAt(vs.group.Pos, ErrValue, "virtual_server group %s: no virtual_server_group of that name", vs.group.Text))
			return nil
		}
		g.used = true
		total := uint64(0)
		for _, e := range g.entries {
			sum := total + e.count // saturating: an IPv6 /64 counts too
			if sum < total {
				sum = math.MaxUint64
			}
			total = sum
		}
		if total+uint64(t.count) > uint64(t.lim.Services) {
			t.fail(errorAt(vs.group.Pos, ErrLimit, "virtual_server group %s makes %d services, beyond the limit of %d", g.name, total, t.lim.Services))
			return nil
		}
		var out []match
		for _, e := range g.entries {
			if e.fwmark != 0 {
				out = append(out, match{fwmark: e.fwmark, family: cmp.Or(e.family, t.markFamily(vs)), at: e.at})
				continue
			}
			for a := e.first; ; a = a.Next() {
				out = append(out, match{vip: a, port: e.port, family: fsm.FamilyOf(a), at: e.at})
				if a == e.last {
					break
				}
			}
		}
		return out
	case vs.fwmark != 0:
		return []match{{fwmark: vs.fwmark, family: t.markFamily(vs), at: at}}
	}
	if vs.family.set && vs.family.v != fsm.FamilyOf(vs.vip) {
		t.fail(errorAt(vs.family.at, ErrValue, "ip_family %s conflicts with the address %s", vs.family.v, vs.vip))
		return nil
	}
	return []match{{vip: vs.vip, port: vs.port, family: fsm.FamilyOf(vs.vip), at: at}}
}

// markFamily is the family of a fwmark service: ip_family, else that of its real
// servers (the first that is not tunnelled), else IPv4 — keepalived's rule.
func (t *translator) markFamily(vs *vsConf) fsm.Family {
	if vs.family.set {
		return vs.family.v
	}
	for _, rs := range vs.servers {
		if first(rs.forwarding, vs.forwarding).v.method != fsm.TUN {
			return fsm.FamilyOf(rs.addr)
		}
	}
	if len(vs.servers) > 0 {
		return fsm.FamilyOf(vs.servers[0].addr)
	}
	return fsm.IPv4
}

// template is the part of a service all the services of one virtual_server share.
func (t *translator) template(vs *vsConf) (fsm.Service, bool) {
	at := vs.node.Pos()
	svc := fsm.Service{Scheduler: fsm.DefaultScheduler, Forwarding: fsm.DefaultForwarding}
	if vs.scheduler.set {
		svc.Scheduler = vs.scheduler.v
	} else {
		t.report(at, Note, "lb_algo", "no scheduler given: wlc, as keepalived chooses (with a warning)")
	}
	for _, f := range vs.flags {
		switch {
		case strings.HasPrefix(f.Text, "sh-") && svc.Scheduler != "sh", strings.HasPrefix(f.Text, "mh-") && svc.Scheduler != "mh":
			t.fail(errorAt(f.Pos, ErrValue, "%s applies to the %s scheduler, not %s (keepalived ignores it)", f.Text, f.Text[:2], svc.Scheduler))
			return svc, false
		case vs.scheduler.set && strings.HasPrefix(f.Text, svc.Scheduler+"-") && before(f.Pos, vs.scheduler.at):
			t.fail(errorAt(f.Pos, ErrValue, "%s comes before lvs_sched %s: keepalived ignores it there; move it after", f.Text, svc.Scheduler))
			return svc, false
		}
		svc.SchedFlags = append(svc.SchedFlags, f.Text)
	}
	if vs.forwarding.set {
		svc.Forwarding = vs.forwarding.v.method
	} else {
		t.report(at, Note, "lvs_method", "no lvs_method given: NAT, as keepalived chooses")
	}
	if vs.persistence.set {
		svc.Persistence = vs.persistence.v
	}
	if vs.granularity.set {
		svc.PersistMask = vs.granularity.v
		if !vs.persistence.set {
			svc.Persistence = persistenceDefault
			t.report(vs.granularity.at, Note, "persistence_granularity", "turns persistence on (%d s), as keepalived does", persistenceDefault)
		}
	}
	if vs.engine != "" {
		svc.PersistEngine = vs.engine
	}
	svc.OnePacket = vs.onePacket.v
	if vs.sorry != nil {
		s := vs.sorry
		svc.SorryServer = netip.AddrPortFrom(s.addr, s.port)
		if s.forwarding.set && s.forwarding.v.method != svc.Forwarding {
			t.fail(errorAt(s.forwarding.at, ErrUnsupported, "sorry_server_lvs_method %s: raftlvs forwards to the sorry server with the service's method (%s)", strings.ToUpper(string(s.forwarding.v.method)), strings.ToUpper(string(svc.Forwarding))))
			return svc, false
		}
		svc.Quorum = 1
	}
	if vs.quorum.set {
		svc.Quorum = vs.quorum.v
		if vs.sorry == nil {
			t.report(vs.quorum.at, Differs, "quorum", "raftlvs applies a quorum only with a sorry_server; keepalived takes every real server out when the quorum is lost")
		}
	}
	if vs.hysteresis.set {
		q := max(svc.Quorum, 1)
		if vs.hysteresis.v >= q {
			t.fail(errorAt(vs.hysteresis.at, ErrValue, "hysteresis %d is not below the quorum %d (keepalived would lower it to %d)", vs.hysteresis.v, q, q-1))
			return svc, false
		}
		svc.Hysteresis = vs.hysteresis.v
	}
	return svc, true
}

// before reports whether a comes before b in the same file.
func before(a, b Pos) bool {
	return a.File == b.File && (a.Line < b.Line || a.Line == b.Line && a.Col < b.Col)
}

// server is a real server as it will be created, before it is given a service.
type server struct {
	conf    *rsConf
	weight  int
	method  fsm.Forwarding // "" inherits the service's
	check   *fsm.HealthCheck
	inhibit bool
}

func (t *translator) buildService(plan *Plan, vs *vsConf) {
	at := vs.node.Pos()
	if len(vs.servers) == 0 {
		t.report(at, Unmapped, "virtual_server", "it has no real_server: keepalived ignores such a virtual_server, and so does the import")
		return
	}
	matches := t.matchesOf(vs)
	tmpl, ok := t.template(vs)
	if !ok || matches == nil {
		return
	}
	servers, total := t.realServers(vs, tmpl)
	if servers == nil {
		return
	}
	if vs.quorum.set && vs.quorum.v > total {
		t.fail(errorAt(vs.quorum.at, ErrValue, "quorum %d is above the total weight %d of the real servers (keepalived would lower it to %d)", vs.quorum.v, total, total))
		return
	}
	tmpl.OnDown, tmpl.HealthCheck = t.sharedSettings(servers)

	for _, m := range matches {
		svc := *tmpl.Clone()
		svc.Family = m.family
		if m.fwmark != 0 {
			svc.FWMark = m.fwmark
			if vs.protocol.set {
				t.report(vs.protocol.at, Note, "protocol", "ignored for a fwmark service, as keepalived does")
			}
		} else {
			svc.VIP, svc.Port = m.vip, m.port
			svc.Protocol = vs.protocol.v
			if !vs.protocol.set {
				svc.Protocol = fsm.UDP
				t.report(at, Note, "protocol", "no protocol given: UDP, as keepalived chooses (with a warning); say protocol TCP if that was meant")
			}
			if svc.OnePacket && svc.Protocol != fsm.UDP {
				t.fail(errorAt(vs.onePacket.at, ErrValue, "ops (one-packet scheduling) applies to UDP services only (keepalived would turn it off)"))
				return
			}
			if svc.Port == 0 && svc.Persistence == 0 {
				t.fail(errorAt(m.at, ErrValue, "port 0 (every port) needs persistence_timeout (keepalived would turn persistence on, 360 s)"))
				return
			}
		}
		if vs.granularity.set && vs.granularity.v > svc.Family.Bits() {
			t.fail(errorAt(vs.granularity.at, ErrValue, "persistence_granularity /%d is longer than an %s address", vs.granularity.v, svc.Family))
			return
		}
		if svc.SorryServer.IsValid() && fsm.FamilyOf(svc.SorryServer.Addr()) != svc.Family {
			t.fail(errorAt(vs.sorry.at, ErrValue, "sorry_server %s is not %s like the service (keepalived skips it)", vs.sorry.addr, svc.Family))
			return
		}
		if svc.SorryServer.IsValid() && svc.Forwarding != fsm.NAT && vs.sorry.port != 0 && vs.sorry.port != svc.Port {
			t.report(vs.sorry.at, Note, "sorry_server", "the port is not used: %s delivers to the service port, as keepalived resets it", strings.ToUpper(string(svc.Forwarding)))
		}
		svc.Name = ""
		fsm.NormalizeService(&svc)
		if err := fsm.ValidateService(&svc); err != nil {
			t.fail(causedAt(m.at, ErrValue, err, "virtual_server %s", svc.DescribeMatch()))
			return
		}
		key := svc.Match()
		if prev, dup := t.matches[key]; dup {
			t.fail(errorAt(m.at, ErrValue, "virtual_server %s is defined twice (first at %s)", svc.DescribeMatch(), prev))
			return
		}
		t.matches[key] = m.at
		t.count++
		plan.Services = append(plan.Services, svc)
		if !t.addServers(plan, &svc, servers) {
			return
		}
	}
}

// realServers works out each real server's weight, method, check and inhibit setting, and the
// total weight (keepalived's quorum check).
func (t *translator) realServers(vs *vsConf, tmpl fsm.Service) ([]server, int) {
	out := make([]server, 0, len(vs.servers))
	total := 0
	ok := true
	for _, rs := range vs.servers {
		s := server{conf: rs, weight: 1}
		if w := first(rs.weight, vs.weight); w.set {
			s.weight = w.v
		}
		total += s.weight
		if rs.forwarding.set && rs.forwarding.v.method != tmpl.Forwarding {
			s.method = rs.forwarding.v.method
		}
		s.inhibit = first(rs.inhibit, vs.inhibit).v
		check, good := t.checkSpec(vs, rs)
		ok = ok && good
		s.check = check
		out = append(out, s)
	}
	if !ok {
		return nil, 0
	}
	return out, total
}

// sharedSettings settles what raftlvs keeps per service but keepalived per real server:
// the on-down action (the setting of most real servers; a tie is keepalived's default,
// remove) and the health check (the most common; the others stay on their real servers).
func (t *translator) sharedSettings(servers []server) (fsm.DownAction, *fsm.HealthCheck) {
	inhibit := 0
	for _, s := range servers {
		if s.inhibit {
			inhibit++
		}
	}
	onDown := fsm.DownRemove
	if 2*inhibit > len(servers) {
		onDown = fsm.DownInhibit
	}
	for _, s := range servers {
		if s.inhibit != (onDown == fsm.DownInhibit) {
			t.report(s.conf.node.Pos(), Differs, "inhibit_on_failure", "raftlvs sets inhibit_on_failure per service: this real server is %s when down, like most of the service's (on_down %s)",
				map[bool]string{true: "kept at weight 0", false: "removed"}[onDown == fsm.DownInhibit], onDown)
		}
	}
	// The most common check, first seen wins a tie; keyed by its JSON so that a virtual
	// server of thousands of real servers is settled in one pass.
	counts := map[string]int{}
	best, bestN := 0, 0
	for i, s := range servers {
		key := specKey(s.check)
		counts[key]++
		if counts[key] > bestN {
			best, bestN = i, counts[key]
		}
	}
	return onDown, servers[best].check.Clone()
}

func specKey(c *fsm.HealthCheck) string {
	if c == nil {
		return ""
	}
	js, _ := json.Marshal(c)
	return string(js)
}

// addServers adds the real servers of vs to one of its services.
func (t *translator) addServers(plan *Plan, svc *fsm.Service, servers []server) bool {
	seen := map[netip.AddrPort]Pos{}
	for _, s := range servers {
		rs := s.conf
		at := rs.node.Pos()
		method := cmp.Or(s.method, svc.Forwarding)
		if fsm.FamilyOf(rs.addr) != svc.Family {
			if method == fsm.TUN {
				t.fail(errorAt(at, ErrUnsupported, "real_server %s is %s under an %s service: raftlvs tunnels within one family only", rs.addr, fsm.FamilyOf(rs.addr), svc.Family))
			} else {
				t.fail(errorAt(at, ErrValue, "real_server %s is %s but the service is %s (keepalived skips it)", rs.addr, fsm.FamilyOf(rs.addr), svc.Family))
			}
			return false
		}
		port := rs.port
		switch {
		case svc.IsFWMark() && method != fsm.NAT && port != 0:
			t.report(at, Note, "real_server", "the port is not used by a %s real server of a fwmark service: cleared, as keepalived does", strings.ToUpper(string(method)))
			port = 0
		case svc.IsFWMark():
		case port == 0:
			port = svc.Port
		case method != fsm.NAT && port != svc.Port:
			t.fail(errorAt(rs.node.Args[1].Pos, ErrValue, "a %s real server receives the service port %d, not %d (keepalived resets it with a warning)", strings.ToUpper(string(method)), svc.Port, port))
			return false
		}
		if len(plan.RealServers) >= t.lim.RealServers {
			t.fail(errorAt(at, ErrLimit, "more than %d real servers in all (group services times their real servers)", t.lim.RealServers))
			return false
		}
		ap := netip.AddrPortFrom(rs.addr, port)
		if prev, dup := seen[ap]; dup {
			t.fail(errorAt(at, ErrValue, "real_server %s is in %s twice (first at %s; keepalived drops the second)", ap, svc.DescribeMatch(), prev))
			return false
		}
		seen[ap] = at
		r := fsm.RealServer{
			Service: svc.Name, Addr: rs.addr, Port: port, Weight: s.weight,
			UpperThreshold: rs.upper, LowerThreshold: rs.lower, Forwarding: s.method,
		}
		if !s.check.Equal(svc.HealthCheck) {
			r.HealthCheck = s.check.Clone()
			if r.HealthCheck == nil {
				r.HealthCheck = &fsm.HealthCheck{Type: fsm.CheckNone}
			}
		}
		fsm.NormalizeRealServer(&r, svc)
		if err := fsm.ValidateRealServer(&r, svc); err != nil {
			t.fail(causedAt(at, ErrValue, err, "real_server %s", ap))
			return false
		}
		plan.RealServers = append(plan.RealServers, r)
	}
	return true
}
