package keepalived

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/raftlvs/raftlvs/fsm"
	"github.com/raftlvs/raftlvs/fsm/plan"
)

// Plan is what a keepalived configuration becomes in raftlvs: the services and real
// servers to create, the VIPs its VRRP instances carried, and the report of every setting
// not carried over as written.
type Plan struct {
	Services    []fsm.Service    `json:"services"`
	RealServers []fsm.RealServer `json:"real_servers"`
	VIPs        []VIP            `json:"vips,omitempty"`
	Report      []Finding        `json:"report,omitempty"`
}

// VIP is an address of a vrrp_instance's virtual_ipaddress block. raftlvs's Raft leader
// owns the addresses of the virtual services; a VIP no service uses is reported.
type VIP struct {
	Addr     netip.Addr `json:"addr"`
	Instance string     `json:"instance"`
	Pos      Pos        `json:"pos"`
	Used     bool       `json:"used"` // the address of an imported virtual service
}

// Commands returns the commands that create the plan: each service, then its real servers.
func (p *Plan) Commands() []fsm.Command {
	byService := map[string][]fsm.RealServer{}
	for _, rs := range p.RealServers {
		byService[rs.Service] = append(byService[rs.Service], rs)
	}
	cmds := make([]fsm.Command, 0, len(p.Services)+len(p.RealServers))
	for _, s := range p.Services {
		cmds = append(cmds, fsm.AddService{Service: *s.Clone()})
		for _, rs := range byService[s.Name] {
			rs.HealthCheck = rs.HealthCheck.Clone()
			cmds = append(cmds, fsm.AddRealServer{RealServer: rs})
		}
	}
	return cmds
}

// Batch returns the plan as one all-or-nothing command.
func (p *Plan) Batch() fsm.Batch { return fsm.Batch{Commands: p.Commands()} }

// Translate turns a parsed configuration into a plan. It is pure: it reads only cfg. Every
// unknown keyword, malformed or out-of-range value and setting raftlvs cannot express is an
// error naming its place (all of them, up to Limits.Errors, joined); everything that is
// left out or behaves differently is in the plan's report.
func Translate(cfg *Config, lim Limits) (*Plan, error) {
	t := &translator{lim: lim.withDefaults(), groups: map[string]*groupConf{}, matches: map[fsm.MatchKey]Pos{}}
	t.findings = append(t.findings, cfg.Findings...)
	t.top(cfg.Nodes)
	plan := t.build()
	if len(t.errs) > 0 {
		return nil, errors.Join(t.errs...)
	}
	plan.Report = sortFindings(t.findings, cfg.Files)
	return plan, nil
}

// translator gathers what the tree says, then builds the plan.
type translator struct {
	lim      Limits
	errs     []error
	findings []Finding
	groups   map[string]*groupConf
	groupSeq []*groupConf
	servers  []*vsConf
	vips     []VIP
	matches  map[fsm.MatchKey]Pos // services created so far, by what they match
	count    int                  // services created so far
}

func (t *translator) fail(e *Error) {
	if len(t.errs) < t.lim.Errors {
		t.errs = append(t.errs, e)
	}
}

func (t *translator) failed() bool { return len(t.errs) > 0 }

func (t *translator) report(at Pos, kind FindingKind, keyword, format string, args ...any) {
	t.findings = append(t.findings, Finding{Pos: at, Kind: kind, Keyword: keyword, Message: fmt.Sprintf(format, args...)})
}

// entry describes a keyword of a block: whether it takes a { } block, how many values,
// and what it does with the context C of its block.
type entry[C any] struct {
	block    bool // a { } block is required
	anyBlock bool // a { } block is allowed
	min, max int  // values after the keyword; max < 0: any number
	fn       func(t *translator, c C, n *Node)
}

type table[C any] map[string]entry[C]

// dispatch checks each statement of a block against its table and runs it.
func dispatch[C any](t *translator, where string, tbl table[C], c C, nodes []*Node) {
	for _, n := range nodes {
		name := n.Name.Text
		e, ok := tbl[name]
		if !ok {
			t.fail(errorAt(n.Pos(), ErrUnknownKeyword, "unknown keyword %q in %s%s", name, where, hint(name)))
			continue
		}
		switch {
		case e.block && !n.HasBlock:
			t.fail(errorAt(n.Pos(), ErrSyntax, "%s needs a { } block", name))
			continue
		case !e.block && !e.anyBlock && n.HasBlock:
			t.fail(errorAt(n.Open, ErrSyntax, "%s takes no { } block", name))
			continue
		case len(n.Args) < e.min:
			t.fail(errorAt(n.Pos(), ErrValue, "%s needs %s", name, plural(e.min, "value")))
			continue
		case e.max >= 0 && len(n.Args) > e.max:
			t.fail(errorAt(n.Args[e.max].Pos, ErrValue, "%s takes %s, not %q", name, plural(e.max, "value"), n.Args[e.max].Text))
			continue
		}
		e.fn(t, c, n)
	}
}

func plural(n int, what string) string {
	switch n {
	case 0:
		return "no " + what
	case 1:
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// hint says where a keyword known elsewhere belongs.
func hint(name string) string {
	switch {
	case name == "real_server" || name == "sorry_server" || name == "lb_algo" || name == "lvs_sched":
		return " (it belongs in a virtual_server)"
	case strings.HasSuffix(name, "_CHECK") || name == "HTTP_GET" || name == "SSL_GET":
		return " (a checker belongs in a real_server)"
	case name == "url":
		return " (url belongs in HTTP_GET or SSL_GET)"
	}
	return ""
}

// unmapped is a keyword raftlvs leaves out, for the reason given.
func unmapped[C any](min, max int, reason string) entry[C] {
	return entry[C]{min: min, max: max, fn: func(t *translator, _ C, n *Node) {
		t.report(n.Pos(), Unmapped, statement(n), "%s", reason)
	}}
}

// unmappedBlock is a block raftlvs leaves out as a whole.
func unmappedBlock[C any](reason string) entry[C] {
	return entry[C]{block: true, min: 0, max: -1, fn: func(t *translator, _ C, n *Node) {
		t.report(n.Pos(), Unmapped, statement(n), "%s", reason)
	}}
}

// optionalBlock is a keyword, with or without a block, that raftlvs leaves out.
func optionalBlock[C any](reason string) entry[C] {
	return entry[C]{anyBlock: true, min: 0, max: -1, fn: func(t *translator, _ C, n *Node) {
		t.report(n.Pos(), Unmapped, statement(n), "%s", reason)
	}}
}

// maxStatement bounds how much of a statement the report quotes.
const maxStatement = 72

// statement quotes a keyword and its values for the report, so that the operator sees
// what is left out (a notify script's command, a global setting's value).
func statement(n *Node) string {
	var b strings.Builder
	b.WriteString(n.Name.Text)
	for _, a := range n.Args {
		b.WriteByte(' ')
		if strings.ContainsAny(a.Text, " \t") || a.Text == "" {
			b.WriteString(strconv.Quote(a.Text))
		} else {
			b.WriteString(a.Text)
		}
	}
	if s := b.String(); len(s) > maxStatement {
		return s[:maxStatement-3] + "..."
	}
	return b.String()
}

// sortFindings orders the report as the files were read, then by line and column, so
// that it reads alongside the configuration; a finding made several times (a template
// stamped out, a group's many services) is listed once.
func sortFindings(fs []Finding, files []string) []Finding {
	order := make(map[string]int, len(files))
	for i, f := range files {
		order[f] = i
	}
	slices.SortStableFunc(fs, func(a, b Finding) int {
		if c := order[a.Pos.File] - order[b.Pos.File]; c != 0 {
			return c
		}
		if c := a.Pos.Line - b.Pos.Line; c != 0 {
			return c
		}
		return cmp.Or(a.Pos.Col-b.Pos.Col, strings.Compare(string(a.Kind), string(b.Kind)),
			strings.Compare(a.Keyword, b.Keyword), strings.Compare(a.Message, b.Message))
	})
	return slices.Compact(fs)
}

// Against measures the plan against a cluster's services and real servers: services the
// file does not mention are left alone (plan.Against).
func (p *Plan) Against(services []fsm.Service, servers []fsm.RealServer) *plan.Changes {
	return plan.Against(plan.Table{Services: p.Services, RealServers: p.RealServers}, services, servers, plan.Options{})
}
