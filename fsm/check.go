package fsm

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// CheckType names a health checker.
type CheckType string

const (
	CheckNone  CheckType = "none" // no check: the real server is always up
	CheckTCP   CheckType = "tcp"  // a TCP connect
	CheckHTTP  CheckType = "http"
	CheckHTTPS CheckType = "https"
	CheckUDP   CheckType = "udp"  // send a payload; ICMP port unreachable (or a wrong reply) is down
	CheckDNS   CheckType = "dns"  // a query, an expected rcode
	CheckSMTP  CheckType = "smtp" // the 220 greeting, then HELO
	CheckExec  CheckType = "exec" // a command on the director: exit 0 is up
)

// CheckTypes lists every checker, in the order the documentation gives them.
var CheckTypes = []CheckType{CheckTCP, CheckHTTP, CheckHTTPS, CheckUDP, CheckDNS, CheckSMTP, CheckExec, CheckNone}

// Health-check defaults: every director probes a real server every 2 s and gives it 1 s;
// three failures in a row take it down (≤ 7 s from a failure to the verdict, where
// keepalived's defaults take about 71 s), two successes bring it back.
const (
	DefaultCheckInterval = 2 * time.Second
	DefaultCheckTimeout  = time.Second
	DefaultCheckRise     = 2
	DefaultCheckFall     = 3
)

// Health-check limits.
const (
	MinCheckInterval = 100 * time.Millisecond
	MaxCheckInterval = time.Hour
	MinCheckTimeout  = 10 * time.Millisecond
	MaxCheckCount    = 100 // rise and fall
	MaxCheckCommand  = 32  // exec arguments
	MaxCheckText     = 1024
)

// HealthCheck is how the directors decide whether a real server is up. A service carries
// one for all its real servers; a real server may override it. Zero fields take the
// defaults above (Normalized fills them in); fields that do not apply to Type must be
// empty. Times are milliseconds, as the JSON names say.
type HealthCheck struct {
	Type CheckType `json:"type"`
	// Port overrides the port probed (keepalived's connect_port); 0 is the real server's,
	// and for a real server of port 0 the protocol's (http 80, https 443, dns 53, smtp 25).
	Port uint16 `json:"port,omitempty"`
	// Source is the address probes are sent from (keepalived's bindto); unset: the
	// kernel's choice.
	Source netip.Addr `json:"source,omitzero"`

	IntervalMS int `json:"interval_ms,omitempty"`
	// TimeoutMS bounds a whole check, connect, request and reply together (keepalived's
	// connect_timeout bounds only each step: a server dribbling its answer passed).
	TimeoutMS int `json:"timeout_ms,omitempty"`
	// JitterMS spreads each run by up to this much (default: a tenth of the interval).
	JitterMS int `json:"jitter_ms,omitempty"`
	Rise     int `json:"rise,omitempty"` // successes in a row to come up
	Fall     int `json:"fall,omitempty"` // failures in a row to go down
	// Retries is the name entries logged before rise and fall existed gave fall; it is
	// read as Fall when Fall is 0 and cleared when a command is prepared.
	Retries int `json:"retries,omitempty"`
	// StartDown keeps a new real server out of rotation until its first successful check
	// (keepalived's alpha); by default it starts in rotation.
	StartDown bool `json:"start_down,omitempty"`

	// http and https.
	Method string `json:"method,omitempty"` // default GET
	Path   string `json:"path,omitempty"`   // default /
	Host   string `json:"host,omitempty"`   // Host header; default the address probed
	SNI    string `json:"sni,omitempty"`    // https: server name sent (default Host, if set)
	// Status lists the codes that mean up, each "200" or a range "200-299"; default
	// "200-399", as HAProxy (keepalived 2.x takes 200-299; an import says so explicitly).
	Status []string `json:"status,omitempty"`
	// BodyRegex, if set, must match the body; Digest, if set, is the MD5 of the body in
	// hex (keepalived's digest). The body read is bounded to 1 MiB.
	BodyRegex string `json:"body_regex,omitempty"`
	Digest    string `json:"digest,omitempty"`
	// TLSVerify checks the real server's certificate against the director's roots (the
	// system's unless it names others) and SNI/Host, else the address probed; off by
	// default, as keepalived's SSL_GET (real servers are probed by address).
	TLSVerify bool `json:"tls_verify,omitempty"`

	// udp: PayloadHex is sent (hex; default an empty datagram); Expect, a regular
	// expression, must match the reply if set (with no Expect, silence until the timeout
	// is up, and only an ICMP port unreachable is down).
	PayloadHex string `json:"payload_hex,omitempty"`
	Expect     string `json:"expect,omitempty"`

	// dns: Query is the name asked (default "."), QueryType the type (default A; SOA, NS,
	// AAAA, MX, TXT, CNAME, PTR, SRV), RCode the answer code that means up (default
	// NOERROR).
	Query     string `json:"query,omitempty"`
	QueryType string `json:"query_type,omitempty"`
	RCode     string `json:"rcode,omitempty"`

	// smtp: HELO is the name sent (default the director's host name).
	HELO string `json:"helo,omitempty"`

	// exec: Command runs on every director with the real server's address and port as
	// its last two arguments and in RAFTLVS_RS_ADDR/RAFTLVS_RS_PORT; exit 0 is up. With
	// DynamicWeight (keepalived's misc_dynamic) exit 2..255 is up with weight code−2, and
	// 1 is down; the weight is reported in the directors' health views, but the state has
	// no field for it yet, so it does not change the IPVS weight. A director runs only
	// commands under its --exec-check-dir.
	Command       []string `json:"command,omitempty"`
	DynamicWeight bool     `json:"dynamic_weight,omitempty"`
}

// Interval, Timeout and Jitter are the spec's times with defaults applied.
func (c *HealthCheck) Interval() time.Duration {
	return msOr(c.IntervalMS, DefaultCheckInterval)
}

func (c *HealthCheck) Timeout() time.Duration { return msOr(c.TimeoutMS, DefaultCheckTimeout) }

func (c *HealthCheck) Jitter() time.Duration { return msOr(c.JitterMS, c.Interval()/10) }

func msOr(ms int, def time.Duration) time.Duration {
	if ms == 0 {
		return def
	}
	return time.Duration(ms) * time.Millisecond
}

// RiseCount and FallCount are rise and fall with defaults applied.
func (c *HealthCheck) RiseCount() int { return intOr(c.Rise, DefaultCheckRise) }

func (c *HealthCheck) FallCount() int {
	if c.Fall == 0 && c.Retries > 0 {
		return c.Retries
	}
	return intOr(c.Fall, DefaultCheckFall)
}

func intOr(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// Clone returns a deep copy; nil stays nil.
func (c *HealthCheck) Clone() *HealthCheck {
	if c == nil {
		return nil
	}
	d := *c
	d.Status = append([]string(nil), c.Status...)
	d.Command = append([]string(nil), c.Command...)
	return &d
}

// Equal reports whether two specs probe the same way (nil equals nil only).
func (c *HealthCheck) Equal(o *HealthCheck) bool {
	if c == nil || o == nil {
		return c == o
	}
	return c.Type == o.Type && c.Port == o.Port && c.Source == o.Source && c.IntervalMS == o.IntervalMS &&
		c.TimeoutMS == o.TimeoutMS && c.JitterMS == o.JitterMS && c.Rise == o.Rise && c.Fall == o.Fall &&
		c.Retries == o.Retries && c.StartDown == o.StartDown && c.Method == o.Method && c.Path == o.Path &&
		c.Host == o.Host && c.SNI == o.SNI && strings.Join(c.Status, ",") == strings.Join(o.Status, ",") &&
		c.BodyRegex == o.BodyRegex && c.Digest == o.Digest && c.TLSVerify == o.TLSVerify &&
		c.PayloadHex == o.PayloadHex && c.Expect == o.Expect && c.Query == o.Query &&
		c.QueryType == o.QueryType && c.RCode == o.RCode && c.HELO == o.HELO &&
		strings.Join(c.Command, "\x00") == strings.Join(o.Command, "\x00") && c.DynamicWeight == o.DynamicWeight
}

// EffectiveCheck is the check that applies to a real server: its own, else its service's;
// nil when neither has one.
func EffectiveCheck(svc *Service, rs *RealServer) *HealthCheck {
	if rs != nil && rs.HealthCheck != nil {
		return rs.HealthCheck
	}
	if svc != nil {
		return svc.HealthCheck
	}
	return nil
}

// normalizeCheck canonicalises a spec from a new command: the legacy retries become fall.
func normalizeCheck(c *HealthCheck) {
	if c == nil {
		return
	}
	if c.Fall == 0 && c.Retries > 0 {
		c.Fall = c.Retries
	}
	c.Retries = 0
	c.Method = strings.ToUpper(c.Method)
	c.QueryType = strings.ToUpper(c.QueryType)
	c.RCode = strings.ToUpper(c.RCode)
	c.Digest = strings.ToLower(c.Digest)
	c.Source = c.Source.Unmap()
}

// checkFieldsLegacy is what Apply checks of a spec, on replay as on first apply: the
// rules of the first release that carried health checks, widened to the newer types.
// Everything else is ValidateHealthCheck's, at Prepare time, so that a rule added later
// never changes how an existing log replays.
func checkFieldsLegacy(field string, c *HealthCheck) error {
	if c == nil {
		return nil
	}
	known := false
	for _, t := range CheckTypes {
		known = known || c.Type == t
	}
	if !known {
		return invalid(field+".type", "must be one of %s, not %q", checkTypeList(), c.Type)
	}
	if c.IntervalMS < 0 || c.TimeoutMS < 0 || c.Retries < 0 || c.Rise < 0 || c.Fall < 0 || c.JitterMS < 0 {
		return invalid(field, "interval, timeout, jitter, rise and fall must not be negative")
	}
	return nil
}

func checkTypeList() string {
	names := make([]string, len(CheckTypes))
	for i, t := range CheckTypes {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}

// ValidateHealthCheck checks a spec fully, naming the field (prefixed by field, e.g.
// "health_check"). The leader runs it when it prepares a command.
func ValidateHealthCheck(field string, c *HealthCheck) error {
	if c == nil {
		return nil
	}
	if err := checkFieldsLegacy(field, c); err != nil {
		return err
	}
	f := func(name string) string { return field + "." + name }
	if iv := c.Interval(); iv < MinCheckInterval || iv > MaxCheckInterval {
		return invalid(f("interval_ms"), "%v is out of range %v..%v", iv, MinCheckInterval, MaxCheckInterval)
	}
	if to := c.Timeout(); to < MinCheckTimeout || to > c.Interval() {
		return invalid(f("timeout_ms"), "%v is out of range %v..interval (%v): a check must end before the next one starts", to, MinCheckTimeout, c.Interval())
	}
	if c.Jitter() > c.Interval()/2 {
		return invalid(f("jitter_ms"), "%v is more than half the interval %v", c.Jitter(), c.Interval())
	}
	if c.RiseCount() > MaxCheckCount || c.FallCount() > MaxCheckCount {
		return invalid(f("rise"), "rise and fall are 1..%d", MaxCheckCount)
	}
	if c.Source.IsValid() {
		if err := validateUnicast(f("source"), c.Source); err != nil {
			return err
		}
	}
	for _, s := range []struct{ name, v string }{
		{"method", c.Method}, {"path", c.Path}, {"host", c.Host}, {"sni", c.SNI}, {"body_regex", c.BodyRegex},
		{"payload_hex", c.PayloadHex}, {"expect", c.Expect}, {"query", c.Query}, {"helo", c.HELO},
	} {
		if len(s.v) > MaxCheckText {
			return invalid(f(s.name), "longer than %d bytes", MaxCheckText)
		}
		if strings.ContainsAny(s.v, "\r\n\x00") && s.name != "body_regex" && s.name != "expect" {
			return invalid(f(s.name), "must not contain line breaks or NUL")
		}
	}
	web := c.Type == CheckHTTP || c.Type == CheckHTTPS
	notFor := func(name string, set bool) error {
		if set {
			return invalid(f(name), "does not apply to %s checks", c.Type)
		}
		return nil
	}
	for _, nf := range []struct {
		name string
		set  bool
		ok   bool
	}{
		{"method", c.Method != "", web}, {"path", c.Path != "", web}, {"host", c.Host != "", web},
		{"status", len(c.Status) > 0, web}, {"body_regex", c.BodyRegex != "", web}, {"digest", c.Digest != "", web},
		{"sni", c.SNI != "", c.Type == CheckHTTPS}, {"tls_verify", c.TLSVerify, c.Type == CheckHTTPS},
		{"payload_hex", c.PayloadHex != "", c.Type == CheckUDP}, {"expect", c.Expect != "", c.Type == CheckUDP},
		{"query", c.Query != "", c.Type == CheckDNS}, {"query_type", c.QueryType != "", c.Type == CheckDNS},
		{"rcode", c.RCode != "", c.Type == CheckDNS}, {"helo", c.HELO != "", c.Type == CheckSMTP},
		{"command", len(c.Command) > 0, c.Type == CheckExec}, {"dynamic_weight", c.DynamicWeight, c.Type == CheckExec},
		{"port", c.Port != 0, c.Type != CheckExec && c.Type != CheckNone},
		{"source", c.Source.IsValid(), c.Type != CheckExec && c.Type != CheckNone},
	} {
		if !nf.ok {
			if err := notFor(nf.name, nf.set); err != nil {
				return err
			}
		}
	}
	switch c.Type {
	case CheckHTTP, CheckHTTPS:
		return validateWebCheck(f, c)
	case CheckUDP:
		if len(c.PayloadHex)%2 != 0 || strings.Trim(strings.ToLower(c.PayloadHex), "0123456789abcdef") != "" {
			return invalid(f("payload_hex"), "%q is not an even number of hex digits", c.PayloadHex)
		}
		if _, err := regexp.Compile(c.Expect); err != nil {
			return invalid(f("expect"), "not a regular expression: %v", err)
		}
	case CheckDNS:
		if c.QueryType != "" && !validDNSType(c.QueryType) {
			return invalid(f("query_type"), "%q: want one of %s", c.QueryType, strings.Join(DNSQueryTypes, " "))
		}
		if c.RCode != "" && !validDNSRCode(c.RCode) {
			return invalid(f("rcode"), "%q: want one of %s", c.RCode, strings.Join(DNSRCodes, " "))
		}
	case CheckExec:
		if len(c.Command) == 0 || c.Command[0] == "" {
			return invalid(f("command"), "an exec check needs a command")
		}
		if len(c.Command) > MaxCheckCommand {
			return invalid(f("command"), "more than %d arguments", MaxCheckCommand)
		}
		if !strings.HasPrefix(c.Command[0], "/") {
			return invalid(f("command"), "%q: give the program's absolute path", c.Command[0])
		}
		for _, a := range c.Command {
			if len(a) > MaxCheckText || strings.ContainsRune(a, 0) {
				return invalid(f("command"), "an argument is longer than %d bytes or holds NUL", MaxCheckText)
			}
		}
	}
	return nil
}

func validateWebCheck(f func(string) string, c *HealthCheck) error {
	switch c.Method {
	case "", "GET", "HEAD", "POST", "OPTIONS":
	default:
		return invalid(f("method"), "%q: want GET, HEAD, POST or OPTIONS", c.Method)
	}
	if c.Path != "" && !strings.HasPrefix(c.Path, "/") {
		return invalid(f("path"), "must start with /")
	}
	if strings.ContainsAny(c.Host, " /") {
		return invalid(f("host"), "%q is not a host name", c.Host)
	}
	for i, s := range c.Status {
		if _, _, err := ParseStatusRange(s); err != nil {
			return invalid(fmt.Sprintf("%s[%d]", f("status"), i), "%v", err)
		}
	}
	if _, err := regexp.Compile(c.BodyRegex); err != nil {
		return invalid(f("body_regex"), "not a regular expression: %v", err)
	}
	if c.Digest != "" && (len(c.Digest) != 32 || strings.Trim(c.Digest, "0123456789abcdef") != "") {
		return invalid(f("digest"), "%q is not an MD5 digest (32 hex digits)", c.Digest)
	}
	return nil
}

// ParseStatusRange reads "200" or "200-299" into an inclusive range of HTTP codes.
func ParseStatusRange(s string) (lo, hi int, err error) {
	a, b, isRange := strings.Cut(s, "-")
	lo, err1 := strconv.Atoi(a)
	hi = lo
	var err2 error
	if isRange {
		hi, err2 = strconv.Atoi(b)
	}
	switch {
	case err1 != nil || err2 != nil:
		return 0, 0, fmt.Errorf("%q is not a status code or a range such as 200-299", s)
	case lo < 100 || hi > 599 || lo > hi:
		return 0, 0, fmt.Errorf("%q is not within 100..599, low to high", s)
	}
	return lo, hi, nil
}

// DNS query types and answer codes a dns check may name.
var (
	DNSQueryTypes = []string{"A", "AAAA", "CNAME", "MX", "NS", "PTR", "SOA", "SRV", "TXT"}
	DNSRCodes     = []string{"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"}
)

func validDNSType(t string) bool  { return containsString(DNSQueryTypes, t) }
func validDNSRCode(r string) bool { return containsString(DNSRCodes, r) }

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// DownAction is what a service does with a real server its checks find down.
type DownAction string

const (
	// DownRemove takes the real server out of the IPVS table (keepalived's default):
	// persistence templates pointing at it go too, so clients stuck to it move on.
	DownRemove DownAction = "remove"
	// DownInhibit keeps it at weight 0 (keepalived's inhibit_on_failure): no new
	// connections, established ones and persistence stay.
	DownInhibit DownAction = "inhibit"
)

// DefaultDownAction is what a service that names none does.
const DefaultDownAction = DownRemove
