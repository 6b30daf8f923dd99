package ipvsadm

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"strconv"
	"strings"

	"github.com/raftlvs/raftlvs/fsm"
)

// DefaultPersistence is the timeout of a bare -p, in seconds: IPVS_SVC_PERSISTENT_TIMEOUT in
// ipvsadm's libipvs (its man page says 300, its code uses 360).
const DefaultPersistence = 360

// maxLineLen bounds one line of input (ipvsadm's own limit is 4096 bytes).
const maxLineLen = 64 << 10

// Parse reads a rule set as `ipvsadm -S -n` prints it and `ipvsadm -R` reads it: -A and -a
// lines, each optionally led by the word "ipvsadm", with blank lines and # comments. It
// checks every line against the fsm rules and against the lines before it. The first bad
// line rejects the whole input with a *LineError; otherwise the rule set is returned in
// ipvsadm's order.
func Parse(r io.Reader) (*Rules, error) {
	p := parser{byMatch: map[matchKey]*parsedService{}, servers: map[fsm.RSKey]int{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLineLen)
	for sc.Scan() {
		p.lineNo++
		if err := p.line(sc.Text()); err != nil {
			return nil, &LineError{Line: p.lineNo, Text: strings.TrimFunc(sc.Text(), isBlank), Err: err}
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &LineError{Line: p.lineNo + 1, Err: fmt.Errorf("longer than %d bytes: %w", maxLineLen, fsm.ErrInvalid)}
		}
		return nil, fmt.Errorf("read ipvsadm rules: %w", err)
	}
	return p.rules(), nil
}

type parser struct {
	args    lineArgs
	lineNo  int
	order   []*parsedService
	byMatch map[matchKey]*parsedService
	servers map[fsm.RSKey]int // the line that added each real server
}

type parsedService struct {
	svc     fsm.Service
	line    int
	servers []fsm.RealServer
}

// matchKey is what identifies a service to ipvsadm and the kernel.
type matchKey struct {
	fwmark uint32
	family fsm.Family
	proto  fsm.Protocol
	vip    netip.Addr
	port   uint16
}

func keyOf(s *fsm.Service) matchKey {
	return matchKey{fwmark: s.FWMark, family: s.Family, proto: s.Protocol, vip: s.VIP, port: s.Port}
}

// isBlank is ipvsadm -R's word separator.
func isBlank(r rune) bool { return r == ' ' || r == '\t' || r == '\r' }

func (p *parser) line(text string) error {
	words := strings.FieldsFunc(text, isBlank)
	for i, w := range words {
		if strings.HasPrefix(w, "#") {
			words = words[:i]
			break
		}
	}
	if len(words) > 0 && words[0] == "ipvsadm" {
		words = words[1:]
	}
	if len(words) == 0 {
		return nil
	}
	cmdName := words[0]
	cmd, known := commands[cmdName]
	switch {
	case !known:
		return invalid(cmdName, "a line must start with -A (add service) or -a (add server)")
	case cmd == 0:
		return invalid(cmdName, "not supported: a rule file holds only -A and -a lines")
	}
	opts, err := splitArgs(p.args[:0], words[1:], cmd, cmdName)
	if err != nil {
		return err
	}
	p.args = opts // a line's arguments are read, never kept: the next line reuses them
	if cmd == 'A' {
		return p.addService(cmdName, opts)
	}
	return p.addServer(cmdName, opts)
}

func (p *parser) addService(cmdName string, opts lineArgs) error {
	s, svcArg, err := matchOf(cmdName, opts)
	if err != nil {
		return err
	}
	if a, ok := opts.get("--scheduler"); ok {
		s.Scheduler = a.value
	}
	var mask int
	if a, ok := opts.get("--netmask"); ok {
		if mask, err = parseMask(a, s.Family); err != nil {
			return err
		}
	}
	if a, ok := opts.get("--persistent"); ok {
		s.Persistence = DefaultPersistence
		if a.set {
			if s.Persistence, err = parseTimeout(a); err != nil {
				return err
			}
		}
		// Without -p the mask is dropped: the kernel uses it only for persistence and
		// ipvsadm -S never prints it.
		s.PersistMask = mask
	}
	if a, ok := opts.get("--pe"); ok {
		s.PersistEngine = a.value
	}
	_, s.OnePacket = opts.get("--ops")
	if a, ok := opts.get("--sched-flags"); ok {
		if s.SchedFlags, err = parseSchedFlags(a, s.Scheduler); err != nil {
			return err
		}
	}
	s.Forwarding = fsm.DR // until rules() sees the real servers
	fsm.NormalizeService(&s)
	if err := fsm.ValidateService(&s); err != nil {
		return err
	}
	key := keyOf(&s)
	if prev, dup := p.byMatch[key]; dup {
		return &fsm.FieldError{Field: svcArg.name, Reason: fmt.Sprintf("service %s was already added on line %d", svcArg.value, prev.line), Kind: fsm.ErrExists}
	}
	ps := &parsedService{svc: s, line: p.lineNo}
	p.byMatch[key] = ps
	p.order = append(p.order, ps)
	return nil
}

func (p *parser) addServer(cmdName string, opts lineArgs) error {
	match, svcArg, err := matchOf(cmdName, opts)
	if err != nil {
		return err
	}
	ps, ok := p.byMatch[keyOf(&match)]
	if !ok {
		return &fsm.FieldError{Field: svcArg.name, Reason: fmt.Sprintf("no -A line for service %s before this one", svcArg.value), Kind: fsm.ErrNotFound}
	}
	svc := &ps.svc
	rsArg, ok := opts.get("--real-server")
	if !ok {
		return invalid(cmdName, "needs -r ADDR[:PORT]")
	}
	addr, port, hasPort, err := parseHostPort(rsArg.name, rsArg.value)
	if err != nil {
		return err
	}
	if !hasPort {
		port = svc.Port // as ipvsadm; a fwmark service has none, so 0
	}
	rs := fsm.RealServer{Service: svc.Name, Addr: addr, Port: port, Weight: 1, Forwarding: fsm.DR}
	switch {
	case opts.has("--masquerading"):
		rs.Forwarding = fsm.NAT
	case opts.has("--ipip"):
		rs.Forwarding = fsm.TUN
	}
	if a, ok := opts.get("--weight"); ok {
		if rs.Weight, err = strconv.Atoi(a.value); err != nil {
			return invalid(a.name, "weight %q is not a number in 0..%d", a.value, fsm.MaxWeight)
		}
	}
	if a, ok := opts.get("--u-threshold"); ok {
		if rs.UpperThreshold, err = parseThreshold(a); err != nil {
			return err
		}
	}
	if a, ok := opts.get("--l-threshold"); ok {
		if rs.LowerThreshold, err = parseThreshold(a); err != nil {
			return err
		}
	}
	if err := checkTunnel(opts, rs.Forwarding); err != nil {
		return err
	}
	fsm.NormalizeRealServer(&rs, svc)
	if err := fsm.ValidateRealServer(&rs, svc); err != nil {
		return err
	}
	if prev, dup := p.servers[rs.Key()]; dup {
		return &fsm.FieldError{Field: rsArg.name, Reason: fmt.Sprintf("real server %s was already added to %s on line %d", hostPort(rs.Addr, rs.Port), svcArg.value, prev), Kind: fsm.ErrExists}
	}
	p.servers[rs.Key()] = p.lineNo
	ps.servers = append(ps.servers, rs)
	return nil
}

// matchOf reads the service a line names: its protocol, VIP and port, or fwmark and family.
func matchOf(cmdName string, opts lineArgs) (fsm.Service, arg, error) {
	var s fsm.Service
	six, hasSix := opts.get("--ipv6")
	if a, ok := opts.get("--fwmark-service"); ok {
		mark, err := parseFWMark(a)
		if err != nil {
			return s, a, err
		}
		s.FWMark, s.Family = mark, fsm.IPv4
		if hasSix {
			s.Family = fsm.IPv6
		}
		return s, a, nil
	}
	if hasSix {
		return s, six, invalid(six.name, "goes only with -f (an IPv6 service is -t [ADDR]:PORT)")
	}
	for _, p := range []struct {
		long  string
		proto fsm.Protocol
	}{{"--tcp-service", fsm.TCP}, {"--udp-service", fsm.UDP}, {"--sctp-service", fsm.SCTP}} {
		if a, ok := opts.get(p.long); ok {
			vip, port, _, err := parseHostPort(a.name, a.value)
			s.Protocol, s.VIP, s.Port, s.Family = p.proto, vip, port, fsm.FamilyOf(vip)
			return s, a, err
		}
	}
	return s, arg{name: cmdName}, invalid(cmdName, "needs a service: -t, -u, --sctp-service or -f")
}

// parseFWMark reads a mark in 1..2^32-1. It also takes the negative numbers ipvsadm -S
// prints for marks of 2^31 and above (it formats them with %d).
func parseFWMark(a arg) (uint32, error) {
	n, err := strconv.ParseInt(a.value, 10, 64)
	switch {
	case err != nil:
		return 0, invalid(a.name, "fwmark %q is not a number", a.value)
	case n >= 1 && n <= math.MaxUint32:
		return uint32(n), nil
	case n >= math.MinInt32 && n <= -1:
		return uint32(int32(n)), nil
	}
	return 0, invalid(a.name, "fwmark %s is out of range 1..%d", a.value, uint32(math.MaxUint32))
}

func parseTimeout(a arg) (uint32, error) {
	if !isDecimal(a.value) {
		return 0, invalid(a.name, "timeout %q is not a number of seconds", a.value)
	}
	n, err := strconv.ParseUint(a.value, 10, 32)
	if err != nil || n < 1 || n > fsm.MaxPersistence {
		return 0, invalid(a.name, "timeout %s is out of range 1..%d", a.value, fsm.MaxPersistence)
	}
	return uint32(n), nil
}

// parseMask reads the persistence granularity: a dotted netmask for IPv4, a prefix length
// for IPv6 (as ipvsadm).
func parseMask(a arg, family fsm.Family) (int, error) {
	if family == fsm.IPv4 {
		return parseIPv4Mask(a.name, a.value)
	}
	n, err := strconv.Atoi(a.value)
	if err != nil || !isDecimal(a.value) || n < 1 || n > 128 {
		return 0, invalid(a.name, "%q: an IPv6 persistence mask is a prefix length 1..128", a.value)
	}
	return n, nil
}

func parseThreshold(a arg) (uint32, error) {
	n, err := strconv.ParseUint(a.value, 10, 32)
	if err != nil {
		return 0, invalid(a.name, "threshold %q is not a number in 0..%d", a.value, fsm.MaxThreshold)
	}
	return uint32(n), nil
}

// parseSchedFlags reads -b as ipvsadm does: a comma-separated list, where the sh-* and
// mh-* names need their scheduler. (This check must come before fsm.NormalizeService,
// which rewrites flag names to the scheduler's.)
func parseSchedFlags(a arg, scheduler string) ([]string, error) {
	if scheduler == "" {
		scheduler = fsm.DefaultScheduler
	}
	var flags []string
	for f := range strings.SplitSeq(a.value, ",") {
		switch {
		case f == "":
			continue
		case f == fsm.Flag1 || f == fsm.Flag2 || f == fsm.Flag3:
		case f == fsm.FlagSHFallback || f == fsm.FlagSHPort:
			if scheduler != "sh" {
				return nil, invalid(a.name, "flag %s needs scheduler sh, not %s", f, scheduler)
			}
		case f == fsm.FlagMHFallback || f == fsm.FlagMHPort:
			if scheduler != "mh" {
				return nil, invalid(a.name, "flag %s needs scheduler mh, not %s", f, scheduler)
			}
		default:
			return nil, invalid(a.name, "unknown scheduler flag %q", f)
		}
		flags = append(flags, f)
	}
	if len(flags) == 0 {
		return nil, invalid(a.name, "no scheduler flag in %q", a.value)
	}
	return flags, nil
}

var tunnelOptions = []string{"--tun-port", "--tun-nocsum", "--tun-csum", "--tun-remcsum"}

// checkTunnel allows only what raftlvs can program: IPIP tunnels (the default --tun-type).
func checkTunnel(opts lineArgs, method fsm.Forwarding) error {
	t, typed := opts.get("--tun-type")
	if typed && method != fsm.TUN {
		return invalid(t.name, "tunnel options go only with -i")
	}
	for _, long := range tunnelOptions {
		if a, ok := opts.get(long); ok && method != fsm.TUN {
			return invalid(a.name, "tunnel options go only with -i")
		}
	}
	if typed {
		switch t.value {
		case "ipip":
		case "gue", "gre":
			return invalid(t.name, "%s tunnels are not supported: raftlvs tunnels with ipip only", t.value)
		default:
			return invalid(t.name, "unknown tunnel type %q (ipvsadm knows ipip, gue and gre)", t.value)
		}
	}
	for _, long := range tunnelOptions {
		if a, ok := opts.get(long); ok {
			return invalid(a.name, "not valid with an ipip tunnel")
		}
	}
	return nil
}

// rules settles each service's forwarding method and returns the set in ipvsadm's order.
// The parser holds each service with its real servers already: they are sorted as they
// are, not copied and regrouped as Rules.arrange does for any rule set.
func (p *parser) rules() *Rules {
	groups := make([]group, len(p.order))
	for i, ps := range p.order {
		ps.svc.Forwarding = commonMethod(ps.servers)
		fsm.NormalizeService(&ps.svc)
		for j := range ps.servers {
			if ps.servers[j].Forwarding == ps.svc.Forwarding {
				ps.servers[j].Forwarding = "" // inherit
			}
			fsm.NormalizeRealServer(&ps.servers[j], &ps.svc)
		}
		groups[i] = group{service: ps.svc, servers: ps.servers}
	}
	sortGroups(groups)
	r := &Rules{Services: make([]fsm.Service, 0, len(groups)), RealServers: make([]fsm.RealServer, 0, len(p.servers))}
	for _, g := range groups {
		r.Services = append(r.Services, g.service)
		r.RealServers = append(r.RealServers, g.servers...)
	}
	return r
}

// commonMethod is the forwarding method most of the real servers use (ties: dr, nat, tun),
// or dr, ipvsadm's default, for a service without real servers.
func commonMethod(servers []fsm.RealServer) fsm.Forwarding {
	methods := []fsm.Forwarding{fsm.DR, fsm.NAT, fsm.TUN}
	count := make([]int, len(methods))
	best := 0
	for _, rs := range servers {
		for i, m := range methods {
			if rs.Forwarding == m {
				count[i]++
			}
		}
	}
	for i := range methods {
		if count[i] > count[best] {
			best = i
		}
	}
	return methods[best]
}
