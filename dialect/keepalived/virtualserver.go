package keepalived

import (
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// Values a level sets for the levels below it: a virtual_server for its real servers, a
// real_server for its checkers (keepalived.conf(5): "VS settings are the defaults for
// RSs, and RS settings are the defaults for checkers").
type inherited struct {
	delayLoop, connectTimeout, delayBeforeRetry, warmup optional[time.Duration]
	retry                                               optional[int]
	alpha, inhibit                                      optional[bool]
	virtualhost                                         optional[string]
}

// optional is a value and the word that set it.
type optional[T any] struct {
	v   T
	at  Pos
	set bool
}

func (o *optional[T]) put(v T, at Pos) { o.v, o.at, o.set = v, at, true }

// first returns the first set value of a chain, from the most specific level.
func first[T any](chain ...optional[T]) optional[T] {
	for _, o := range chain {
		if o.set {
			return o
		}
	}
	return optional[T]{}
}

// forwarding is an lvs_method and where it was given.
type forwarding struct {
	method fsm.Forwarding
	at     Pos
}

// vsConf is a virtual_server block as read.
type vsConf struct {
	node   *Node
	vip    netip.Addr
	port   uint16
	fwmark uint32
	group  *Word // virtual_server group NAME

	family      optional[fsm.Family]
	scheduler   optional[string]
	flags       []Word
	forwarding  optional[forwarding]
	persistence optional[uint32]
	granularity optional[int]
	engine      string
	protocol    optional[fsm.Protocol]
	onePacket   optional[bool]
	quorum      optional[int]
	hysteresis  optional[int]
	sorry       *sorryConf
	weight      optional[int]
	inherited
	servers []*rsConf
}

type sorryConf struct {
	addr       netip.Addr
	port       uint16
	at         Pos
	inhibit    bool
	forwarding optional[forwarding]
}

// rsConf is a real_server block as read.
type rsConf struct {
	node       *Node
	addr       netip.Addr
	port       uint16
	weight     optional[int]
	upper      uint32
	lower      uint32
	forwarding optional[forwarding]
	inherited
	checkers []*checkConf
}

var (
	vsOnce  sync.Once
	vsTable table[*vsConf]
	rsTable table[*rsConf]
)

// timing are the keywords shared by virtual_server and real_server (and, with the same
// names, by the checkers).
func timing[C any](get func(C) *inherited) table[C] {
	return table[C]{
		"delay_loop": {min: 1, max: 1, fn: func(t *translator, c C, n *Node) {
			if d, err := readTimer(n.Args[0], "delay_loop", time.Microsecond); err != nil {
				t.fail(err)
			} else {
				get(c).delayLoop.put(d, n.Args[0].Pos)
			}
		}},
		"connect_timeout": {min: 1, max: 1, fn: func(t *translator, c C, n *Node) {
			if d, err := readTimer(n.Args[0], "connect_timeout", time.Microsecond); err != nil {
				t.fail(err)
			} else {
				get(c).connectTimeout.put(d, n.Args[0].Pos)
			}
		}},
		"delay_before_retry": {min: 1, max: 1, fn: func(t *translator, c C, n *Node) {
			if d, err := readTimer(n.Args[0], "delay_before_retry", 0); err != nil {
				t.fail(err)
			} else {
				get(c).delayBeforeRetry.put(d, n.Args[0].Pos)
			}
		}},
		"warmup": {min: 1, max: 1, fn: func(t *translator, c C, n *Node) {
			if d, err := readTimer(n.Args[0], "warmup", 0); err != nil {
				t.fail(err)
			} else {
				get(c).warmup.put(d, n.Args[0].Pos)
			}
		}},
		"retry": {min: 1, max: 1, fn: func(t *translator, c C, n *Node) {
			if v, err := readUint(n.Args[0], "retry", 0, math.MaxUint32); err != nil {
				t.fail(err)
			} else {
				get(c).retry.put(int(min(v, math.MaxInt32)), n.Args[0].Pos)
			}
		}},
		"virtualhost": {min: 1, max: 1, fn: func(t *translator, c C, n *Node) {
			get(c).virtualhost.put(n.Args[0].Text, n.Args[0].Pos)
		}},
	}
}

func vsKeywords() (table[*vsConf], table[*rsConf]) {
	vsOnce.Do(func() {
		vsTable = timing(func(v *vsConf) *inherited { return &v.inherited })
		for k, e := range map[string]entry[*vsConf]{
			"lb_algo":                 {min: 1, max: 1, fn: (*translator).scheduler},
			"lvs_sched":               {min: 1, max: 1, fn: (*translator).scheduler},
			"ops":                     {fn: func(t *translator, v *vsConf, n *Node) { v.onePacket.put(true, n.Pos()) }},
			"hashed":                  {fn: noteHashed},
			"flag-1":                  {fn: schedFlag},
			"flag-2":                  {fn: schedFlag},
			"flag-3":                  {fn: schedFlag},
			"sh-port":                 {fn: schedFlag},
			"sh-fallback":             {fn: schedFlag},
			"mh-port":                 {fn: schedFlag},
			"mh-fallback":             {fn: schedFlag},
			"lb_kind":                 {min: 1, max: -1, fn: func(t *translator, v *vsConf, n *Node) { t.forwarding(&v.forwarding, n) }},
			"lvs_method":              {min: 1, max: -1, fn: func(t *translator, v *vsConf, n *Node) { t.forwarding(&v.forwarding, n) }},
			"persistence_timeout":     {min: 0, max: 1, fn: (*translator).persistence},
			"persistence_granularity": {min: 1, max: 1, fn: (*translator).granularity},
			"persistence_engine":      {min: 1, max: 1, fn: (*translator).engine},
			"protocol":                {min: 1, max: 1, fn: (*translator).protocol},
			"ip_family":               {min: 1, max: 1, fn: (*translator).ipFamily},
			"quorum":                  {min: 1, max: 1, fn: (*translator).quorum},
			"hysteresis":              {min: 1, max: 1, fn: (*translator).hysteresis},
			"weight": {min: 1, max: 1, fn: func(t *translator, v *vsConf, n *Node) {
				if w, err := readUint(n.Args[0], "weight", 1, fsm.MaxWeight); err != nil {
					t.fail(err)
				} else {
					v.weight.put(int(w), n.Args[0].Pos)
				}
			}},
			"alpha":              {max: 1, fn: func(t *translator, v *vsConf, n *Node) { vsFlag(t, &v.alpha, n) }},
			"inhibit_on_failure": {max: 1, fn: func(t *translator, v *vsConf, n *Node) { vsFlag(t, &v.inhibit, n) }},
			"sorry_server":       {min: 1, max: 2, fn: (*translator).sorryServer},
			"sorry_server_inhibit": {fn: func(t *translator, v *vsConf, n *Node) {
				if v.sorry == nil {
					t.fail(errorAt(n.Pos(), ErrValue, "sorry_server_inhibit before or without a sorry_server (keepalived ignores it)"))
					return
				}
				v.sorry.inhibit = true
				t.report(n.Pos(), Differs, "sorry_server_inhibit", "raftlvs adds the sorry server when the quorum is lost and removes it when it is back, rather than keeping it at weight 0 meanwhile")
			}},
			"sorry_server_lvs_method": {min: 1, max: -1, fn: func(t *translator, v *vsConf, n *Node) {
				if v.sorry == nil {
					t.fail(errorAt(n.Pos(), ErrValue, "sorry_server_lvs_method before or without a sorry_server (keepalived ignores it)"))
					return
				}
				t.forwarding(&v.sorry.forwarding, n)
			}},
			"real_server": {block: true, min: 1, max: 2, fn: (*translator).realServer},
			"omega":       unmapped[*vsConf](0, 0, "raftlvs runs no notify scripts, at exit or otherwise"),
			"quorum_up":   unmapped[*vsConf](1, -1, whyScript),
			"quorum_down": unmapped[*vsConf](1, -1, whyScript),
			"ha_suspend":  unmapped[*vsConf](0, 0, "raftlvs checks real servers on every director whether or not it holds the VIP"),
			"smtp_alert":  unmapped[*vsConf](0, 1, whySMTP),
			"snmp_name":   unmapped[*vsConf](1, 1, whySNMP),
		} {
			vsTable[k] = e
		}

		rsTable = timing(func(r *rsConf) *inherited { return &r.inherited })
		for k, e := range map[string]entry[*rsConf]{
			"weight": {min: 1, max: 1, fn: func(t *translator, r *rsConf, n *Node) {
				if w, err := readUint(n.Args[0], "weight", 0, fsm.MaxWeight); err != nil {
					t.fail(err)
				} else {
					r.weight.put(int(w), n.Args[0].Pos)
				}
			}},
			"lvs_method": {min: 1, max: -1, fn: func(t *translator, r *rsConf, n *Node) { t.forwarding(&r.forwarding, n) }},
			"uthreshold": {min: 1, max: 1, fn: func(t *translator, r *rsConf, n *Node) {
				if v, err := readUint(n.Args[0], "uthreshold", 0, fsm.MaxThreshold); err != nil {
					t.fail(err)
				} else {
					r.upper = uint32(v)
				}
			}},
			"lthreshold": {min: 1, max: 1, fn: func(t *translator, r *rsConf, n *Node) {
				if v, err := readUint(n.Args[0], "lthreshold", 0, fsm.MaxThreshold); err != nil {
					t.fail(err)
				} else {
					r.lower = uint32(v)
				}
			}},
			"inhibit_on_failure": {min: 0, max: 1, fn: func(t *translator, r *rsConf, n *Node) {
				if b, err := readBool(n); err != nil {
					t.fail(err)
				} else {
					r.inhibit.put(b, n.Pos())
				}
			}},
			"alpha": {min: 0, max: 1, fn: func(t *translator, r *rsConf, n *Node) {
				if b, err := readBool(n); err != nil {
					t.fail(err)
				} else {
					r.alpha.put(b, n.Pos())
				}
			}},
			"notify_up":   unmapped[*rsConf](1, -1, whyScript),
			"notify_down": unmapped[*rsConf](1, -1, whyScript),
			"smtp_alert":  unmapped[*rsConf](0, 1, whySMTP),
			"snmp_name":   unmapped[*rsConf](1, 1, whySNMP),
		} {
			rsTable[k] = e
		}
		for k, e := range checkerEntries() {
			rsTable[k] = e
		}
	})
	return vsTable, rsTable
}

// vsFlag reads alpha or inhibit_on_failure in a virtual_server, where keepalived takes
// the keyword alone and ignores a value: "off" there would turn it on.
func vsFlag(t *translator, dst *optional[bool], n *Node) {
	b, err := readBool(n)
	switch {
	case err != nil:
		t.fail(err)
	case !b:
		t.fail(errorAt(n.Args[0].Pos, ErrValue, "%s %s in a virtual_server: keepalived ignores the value there and turns %s on; remove the line instead", n.Name.Text, n.Args[0].Text, n.Name.Text))
	default:
		dst.put(true, n.Pos())
	}
}

func noteHashed(t *translator, _ *vsConf, n *Node) {
	t.report(n.Pos(), Note, "hashed", "nothing to import: the kernel marks every service hashed")
}

func schedFlag(_ *translator, v *vsConf, n *Node) { v.flags = append(v.flags, n.Name) }

// virtualServer reads "virtual_server IP [PORT]", "virtual_server fwmark N" or
// "virtual_server group NAME", then its block.
func (t *translator) virtualServer(_ *translator, n *Node) {
	vs := &vsConf{node: n}
	a := n.Args
	switch a[0].Text {
	case "group", "fwmark":
		if len(a) < 2 {
			t.fail(errorAt(a[0].Pos, ErrValue, "virtual_server %s needs a value", a[0].Text))
			return
		}
		if a[0].Text == "group" {
			vs.group = &a[1]
			break
		}
		m, err := readUint(a[1], "fwmark", 1, fsm.MaxFWMark)
		if err != nil {
			t.fail(err)
			return
		}
		vs.fwmark = uint32(m)
	default:
		addr, err := readAddr(a[0], "virtual_server")
		if err != nil {
			t.fail(err)
			return
		}
		vs.vip = addr
		if len(a) > 1 {
			if vs.port, err = readPort(a[1], "port"); err != nil {
				t.fail(err)
				return
			}
		}
	}
	vsTbl, _ := vsKeywords()
	dispatch(t, "virtual_server", vsTbl, vs, n.Block)
	t.servers = append(t.servers, vs)
}

func (t *translator) scheduler(v *vsConf, n *Node) {
	s := n.Args[0].Text
	if !slices.Contains(fsm.Schedulers, s) {
		t.fail(errorAt(n.Args[0].Pos, ErrValue, "%s %q: not a kernel scheduler (one of %s); keepalived would ignore it and use wlc", n.Name.Text, s, strings.Join(fsm.Schedulers, " ")))
		return
	}
	v.scheduler.put(s, n.Args[0].Pos)
}

// forwarding reads an lvs_method: NAT, DR or TUN [type ipip] [nocsum].
func (t *translator) forwarding(dst *optional[forwarding], n *Node) {
	a := n.Args
	var m fsm.Forwarding
	switch a[0].Text {
	case "NAT":
		m = fsm.NAT
	case "DR":
		m = fsm.DR
	case "TUN":
		m = fsm.TUN
	default:
		t.fail(errorAt(a[0].Pos, ErrValue, "%s %q: want NAT, DR or TUN", n.Name.Text, a[0].Text))
		return
	}
	for i := 1; i < len(a); i++ {
		w := a[i]
		switch {
		case m != fsm.TUN:
			t.fail(errorAt(w.Pos, ErrValue, "%s %s takes no tunnel options, not %q", n.Name.Text, a[0].Text, w.Text))
			return
		case w.Text == "type" && i+1 < len(a):
			i++
			switch a[i].Text {
			case "ipip":
			case "gue", "gre":
				t.fail(errorAt(a[i].Pos, ErrUnsupported, "TUN type %s: raftlvs programs IPIP tunnels only", a[i].Text))
				return
			default:
				t.fail(errorAt(a[i].Pos, ErrValue, "TUN type %q: want ipip, gue or gre", a[i].Text))
				return
			}
		case w.Text == "nocsum":
		case w.Text == "port" || w.Text == "csum" || w.Text == "remcsum":
			t.fail(errorAt(w.Pos, ErrValue, "%q applies to GUE or GRE tunnels, not IPIP", w.Text))
			return
		default:
			t.fail(errorAt(w.Pos, ErrValue, "%s TUN: unknown tunnel option %q", n.Name.Text, w.Text))
			return
		}
	}
	dst.put(forwarding{method: m, at: a[0].Pos}, a[0].Pos)
}

// persistenceDefault is keepalived's (and libipvs's) timeout of a bare persistence_timeout.
const persistenceDefault = 360

// maxPersistence is keepalived's LVS_MAX_TIMEOUT, 31 days.
const maxPersistence = 86400 * 31

func (t *translator) persistence(v *vsConf, n *Node) {
	if len(n.Args) == 0 {
		v.persistence.put(persistenceDefault, n.Pos())
		return
	}
	p, err := readUint(n.Args[0], "persistence_timeout", 1, maxPersistence)
	if err != nil {
		t.fail(err)
		return
	}
	v.persistence.put(uint32(p), n.Args[0].Pos)
}

// granularity reads a persistence netmask: dotted for IPv4, a prefix length for IPv6.
func (t *translator) granularity(v *vsConf, n *Node) {
	w := n.Args[0]
	if strings.Contains(w.Text, ".") {
		a, err := netip.ParseAddr(w.Text)
		if err != nil || !a.Is4() {
			t.fail(errorAt(w.Pos, ErrValue, "persistence_granularity %q: want an IPv4 netmask such as 255.255.255.0", w.Text))
			return
		}
		bits, ok := maskBits(a.As4())
		if !ok {
			t.fail(errorAt(w.Pos, ErrUnsupported, "persistence_granularity %s is not a contiguous netmask: raftlvs keeps a prefix length", w.Text))
			return
		}
		v.granularity.put(bits, w.Pos)
		return
	}
	bits, err := readUint(w, "persistence_granularity", 1, 128)
	if err != nil {
		t.fail(err)
		return
	}
	v.granularity.put(int(bits), w.Pos)
}

func maskBits(b [4]byte) (int, bool) {
	m := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	n := 0
	for m&0x80000000 != 0 {
		n++
		m <<= 1
	}
	return n, m == 0 && n > 0
}

func (t *translator) engine(v *vsConf, n *Node) {
	if n.Args[0].Text != "sip" {
		t.fail(errorAt(n.Args[0].Pos, ErrValue, "persistence_engine %q: the kernel has only sip", n.Args[0].Text))
		return
	}
	v.engine = "sip"
}

func (t *translator) protocol(v *vsConf, n *Node) {
	var p fsm.Protocol
	switch strings.ToUpper(n.Args[0].Text) {
	case "TCP":
		p = fsm.TCP
	case "UDP":
		p = fsm.UDP
	case "SCTP":
		p = fsm.SCTP
	default:
		t.fail(errorAt(n.Args[0].Pos, ErrValue, "protocol %q: want TCP, UDP or SCTP", n.Args[0].Text))
		return
	}
	v.protocol.put(p, n.Args[0].Pos)
}

func (t *translator) ipFamily(v *vsConf, n *Node) {
	switch n.Args[0].Text {
	case "inet":
		v.family.put(fsm.IPv4, n.Args[0].Pos)
	case "inet6":
		v.family.put(fsm.IPv6, n.Args[0].Pos)
	default:
		t.fail(errorAt(n.Args[0].Pos, ErrValue, "ip_family %q: want inet or inet6", n.Args[0].Text))
	}
}

func (t *translator) quorum(v *vsConf, n *Node) {
	q, err := readUint(n.Args[0], "quorum", 1, math.MaxInt32)
	if err != nil {
		err.Msg += " (keepalived would set it to 1)"
		t.fail(err)
		return
	}
	v.quorum.put(int(q), n.Args[0].Pos)
}

func (t *translator) hysteresis(v *vsConf, n *Node) {
	h, err := readUint(n.Args[0], "hysteresis", 0, math.MaxInt32)
	if err != nil {
		t.fail(err)
		return
	}
	v.hysteresis.put(int(h), n.Args[0].Pos)
}

func (t *translator) sorryServer(v *vsConf, n *Node) {
	addr, err := readAddr(n.Args[0], "sorry_server")
	if err != nil {
		t.fail(err)
		return
	}
	s := &sorryConf{addr: addr, at: n.Pos()}
	if len(n.Args) > 1 {
		if s.port, err = readPort(n.Args[1], "port"); err != nil {
			t.fail(err)
			return
		}
	}
	if v.sorry != nil {
		t.fail(errorAt(n.Pos(), ErrValue, "a second sorry_server (the first is at %s)", v.sorry.at))
		return
	}
	v.sorry = s
}

func (t *translator) realServer(v *vsConf, n *Node) {
	addr, err := readAddr(n.Args[0], "real_server")
	if err != nil {
		t.fail(err)
		return
	}
	rs := &rsConf{node: n, addr: addr}
	if len(n.Args) > 1 {
		if rs.port, err = readPort(n.Args[1], "port"); err != nil {
			t.fail(err)
			return
		}
	}
	_, rsTbl := vsKeywords()
	dispatch(t, "real_server", rsTbl, rs, n.Block)
	v.servers = append(v.servers, rs)
}
