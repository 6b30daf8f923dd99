package keepalived

import (
	"cmp"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// unmappedCheckers are the checkers raftlvs has no counterpart of.
var unmappedCheckers = map[string]string{
	"PING_CHECK": "raftlvs has no ICMP echo check",
	"FILE_CHECK": "raftlvs has no file check: drain a real server with `raftlvs server edit --drain`, or let its agent do it",
	"BFD_CHECK":  "raftlvs has no BFD",
}

// checkSpec makes the health check of a real server from its first checker raftlvs can
// run, with keepalived's inheritance (checker, then real server, then virtual server,
// then keepalived's defaults) written out, so that the imported check probes as
// keepalived's did. ok is false when an error was recorded.
func (t *translator) checkSpec(vs *vsConf, rs *rsConf) (*fsm.HealthCheck, bool) {
	var c *checkConf
	var left []*checkConf
	for _, k := range rs.checkers {
		switch {
		case k.typ == "":
			left = append(left, k)
		case c == nil:
			c = k
		default:
			t.report(k.node.Pos(), Differs, k.kind, "raftlvs runs one check per real server: only the %s at %s is imported (keepalived wants every checker of a real server up)", c.kind, c.node.Pos())
		}
	}
	for _, k := range left {
		why := unmappedCheckers[k.kind]
		if c == nil {
			why += ": the real server is imported without a check (always up)"
		}
		t.report(k.node.Pos(), Unmapped, k.kind, "%s", why)
	}
	if c == nil {
		return nil, true
	}
	at := c.node.Pos()
	h := &fsm.HealthCheck{Type: c.typ, Rise: 1, Port: c.port, Source: c.bindto}

	interval := first(c.delayLoop, rs.delayLoop, vs.delayLoop)
	if !interval.set {
		interval.v, interval.at = defaultDelayLoop, at
	}
	var timeout optional[time.Duration]
	what := "connect_timeout"
	if c.typ == fsm.CheckExec {
		// keepalived bounds a MISC_CHECK by misc_timeout, else by the virtual server's
		// delay_loop.
		timeout, what = c.miscTimeout, "misc_timeout"
		if !timeout.set {
			timeout = first(vs.delayLoop, optional[time.Duration]{v: defaultDelayLoop, at: at, set: true})
			timeout.at, what = at, "the timeout keepalived gives a MISC_CHECK without misc_timeout (the virtual server's delay_loop)"
		}
	} else if timeout = first(c.connectTimeout, rs.connectTimeout, vs.connectTimeout); !timeout.set {
		timeout = optional[time.Duration]{v: defaultConnectTimeout, at: at}
		what = "keepalived's default connect_timeout"
	}
	iv, exactIv := ms(interval.v)
	to, exactTo := ms(timeout.v)
	if iv < int(fsm.MinCheckInterval/time.Millisecond) || iv > int(fsm.MaxCheckInterval/time.Millisecond) {
		t.fail(errorAt(interval.at, ErrValue, "delay_loop %s: raftlvs checks every %v to %v", fmtDur(interval.v), fsm.MinCheckInterval, fsm.MaxCheckInterval))
		return nil, false
	}
	if to < int(fsm.MinCheckTimeout/time.Millisecond) {
		t.fail(errorAt(timeout.at, ErrValue, "timeout %s: raftlvs gives a check at least %v", fmtDur(timeout.v), fsm.MinCheckTimeout))
		return nil, false
	}
	if !exactIv || !exactTo {
		t.report(at, Differs, c.kind, "raftlvs keeps times in milliseconds: rounded up to an interval of %d ms and a timeout of %d ms", iv, to)
	}
	if to > iv {
		t.report(timeout.at, Differs, c.kind, "%s, %s, is longer than the interval %s: raftlvs ends a check before the next one starts, so it gives it %s", what, fmtDur(timeout.v), fmtDur(interval.v), fmtDur(interval.v))
		to = iv
	}
	h.IntervalMS, h.TimeoutMS = iv, to

	retry := first(c.retry, rs.retry, vs.retry)
	if !retry.set {
		retry.v, retry.at = defaultRetry(c.typ), at
	}
	// keepalived declares a live server down after 1+retry failures in a row, and up
	// after one success (it has no rise).
	h.Fall = retry.v + 1
	if h.Fall > fsm.MaxCheckCount {
		t.fail(errorAt(retry.at, ErrValue, "retry %d: raftlvs counts at most %d failures in a row", retry.v, fsm.MaxCheckCount))
		return nil, false
	}
	h.StartDown = first(c.alpha, rs.alpha, vs.alpha).v
	if dbr := first(c.delayBeforeRetry, rs.delayBeforeRetry, vs.delayBeforeRetry); dbr.set && dbr.v != interval.v && h.Fall > 1 {
		t.report(dbr.at, Differs, "delay_before_retry", "raftlvs probes again after the interval (%s), not after delay_before_retry (%s): a failing server goes down after about %d intervals", fmtDur(interval.v), fmtDur(dbr.v), h.Fall)
	}
	if w := first(c.warmup, rs.warmup, vs.warmup); w.set {
		t.report(w.at, Unmapped, "warmup", "raftlvs spreads each probe by a jitter of up to a tenth of the interval instead of a random delay at start")
	}
	if c.connectIP.set && c.connectIP.v != rs.addr {
		t.report(c.connectIP.at, Differs, "connect_ip", "raftlvs probes the real server's own address (%s), not %s", rs.addr, c.connectIP.v)
	}

	switch c.typ {
	case fsm.CheckHTTP, fsm.CheckHTTPS:
		if !t.webCheck(h, c, vs, rs) {
			return nil, false
		}
	case fsm.CheckExec:
		if len(c.command) == 0 {
			t.fail(errorAt(at, ErrValue, "MISC_CHECK needs a misc_path (keepalived skips the checker)"))
			return nil, false
		}
		h.Command, h.DynamicWeight = c.command, c.dynamic
		t.report(c.commandAt, Differs, "misc_path", "raftlvs runs the command with the real server's address and port appended as two more arguments (and in RAFTLVS_RS_ADDR, RAFTLVS_RS_PORT), which keepalived does not; and only from a director's --exec-check-dir")
	case fsm.CheckSMTP:
		h.HELO = c.helo
	case fsm.CheckDNS:
		h.QueryType = cmp.Or(c.dnsType, "SOA")
		h.Query = cmp.Or(c.dnsName, ".")
		h.RCode = "NOERROR"
	case fsm.CheckUDP:
		h.PayloadHex, h.Expect = c.payload, c.expect
	}
	if err := fsm.ValidateHealthCheck("health_check", h); err != nil {
		t.fail(causedAt(at, ErrValue, err, "%s", c.kind))
		return nil, false
	}
	return h, true
}

// defaultRetry is keepalived's retry of each checker: 3 for DNS, 0 for MISC, else 1.
func defaultRetry(typ fsm.CheckType) int {
	switch typ {
	case fsm.CheckDNS:
		return 3
	case fsm.CheckExec:
		return 0
	}
	return 1
}

// webCheck fills in HTTP_GET and SSL_GET: the first url block; the status keepalived
// accepts by default, 200-299; the Host from the nearest virtualhost.
func (t *translator) webCheck(h *fsm.HealthCheck, c *checkConf, vs *vsConf, rs *rsConf) bool {
	if len(c.urls) == 0 {
		t.fail(errorAt(c.node.Pos(), ErrValue, "%s needs a url block", c.kind))
		return false
	}
	u := c.urls[0]
	for _, extra := range c.urls[1:] {
		t.report(extra.node.Pos(), Differs, "url", "raftlvs checks one url per real server: only %s (at %s) is imported", u.path, u.node.Pos())
	}
	h.Method, h.Path, h.Digest = "GET", u.path, u.digest
	h.Status = u.status
	if len(h.Status) == 0 {
		h.Status = []string{"200-299"}
	}
	host := first(u.virtualhost, c.virtualhost, rs.virtualhost, vs.virtualhost)
	h.Host = host.v
	if u.regex.set {
		if u.noMatch {
			t.report(u.regex.at, Differs, "regex_no_match", "raftlvs can only require the regex to match: the check is imported without it")
		} else {
			h.BodyRegex = u.regex.v
		}
	}
	if c.typ == fsm.CheckHTTPS {
		switch {
		case c.sniName != "":
			h.SNI = c.sniName
		case c.sni.v:
			// raftlvs sends the Host as the server name by default, as enable_sni does.
		case h.Host != "":
			t.report(c.node.Pos(), Differs, c.kind, "raftlvs sends the virtualhost %s as the TLS server name; keepalived sends none without enable_sni", h.Host)
		}
	}
	return true
}
