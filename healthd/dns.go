package healthd

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/miekg/dns"

	"github.com/raftlvs/raftlvs/fsm"
)

// dnsCheck asks one question over UDP and is up when the answer's rcode is the expected
// one. It does the exchange itself (miekg/dns only encodes and decodes) so that the
// check's context, not the library's timers, bounds it.
type dnsCheck struct {
	base  base
	name  string
	qtype uint16
	rcode int
}

func newDNSCheck(b base, spec *fsm.HealthCheck) (*dnsCheck, error) {
	c := &dnsCheck{base: b, name: ".", qtype: dns.TypeA, rcode: dns.RcodeSuccess}
	if spec.Query != "" {
		c.name = dns.Fqdn(spec.Query)
	}
	if _, ok := dns.IsDomainName(c.name); !ok {
		return nil, fmt.Errorf("compile health check: query %q is not a domain name: %w", spec.Query, ErrBadCheck)
	}
	if spec.QueryType != "" {
		t, ok := dns.StringToType[spec.QueryType]
		if !ok {
			return nil, fmt.Errorf("compile health check: query_type %q: %w", spec.QueryType, ErrBadCheck)
		}
		c.qtype = t
	}
	if spec.RCode != "" {
		r, ok := dns.StringToRcode[spec.RCode]
		if !ok {
			return nil, fmt.Errorf("compile health check: rcode %q: %w", spec.RCode, ErrBadCheck)
		}
		c.rcode = r
	}
	return c, nil
}

func (c *dnsCheck) check(ctx context.Context, to netip.AddrPort) Result {
	to, _ = withPort(to, 53)
	q := new(dns.Msg)
	q.SetQuestion(c.name, c.qtype)
	wire, err := q.Pack()
	if err != nil {
		return down(ErrBadCheck, err, "DNS query %s %s: %v", c.name, dns.TypeToString[c.qtype], err)
	}
	conn, r, ok := c.base.dial(ctx, "udp", to)
	if !ok {
		return r
	}
	defer conn.Close()
	defer follow(ctx, conn)()
	if _, err := conn.Write(wire); err != nil {
		return c.failed(ctx, "send the query", err)
	}
	buf := make([]byte, dns.MaxMsgSize)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return c.failed(ctx, "wait for the answer", err)
		}
		var a dns.Msg
		if err := a.Unpack(buf[:n]); err != nil {
			return down(ErrProtocol, err, "DNS answer does not parse: %v", err)
		}
		if a.Id != q.Id || !a.Response {
			continue // a late answer to an earlier query, or not an answer at all
		}
		if a.Rcode != c.rcode {
			return down(ErrStatus, nil, "DNS %s, want %s", rcodeName(a.Rcode), rcodeName(c.rcode))
		}
		return up("DNS " + rcodeName(a.Rcode))
	}
}

func (c *dnsCheck) failed(ctx context.Context, step string, err error) Result {
	return datagramFailed(ctx, step, err, c.base.timeout)
}

func rcodeName(r int) string {
	if s, ok := dns.RcodeToString[r]; ok {
		return s
	}
	return fmt.Sprintf("RCODE%d", r)
}
