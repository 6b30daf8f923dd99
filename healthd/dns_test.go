package healthd

import (
	"net"
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"github.com/raftlvs/raftlvs/fsm"
)

// question is what the test DNS server was asked.
type question struct {
	name  string
	qtype uint16
}

// dnsServer answers on lo over UDP: "ok.example." and "." with NOERROR, "broken.example."
// with SERVFAIL, "drop.example." never, anything else NXDOMAIN.
func dnsServer(t *testing.T, lo netip.Addr) (netip.AddrPort, <-chan question) {
	t.Helper()
	pc, err := net.ListenPacket("udp", netip.AddrPortFrom(lo, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	asked := make(chan question, 16)
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, NotifyStartedFunc: func() { close(started) }, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		asked <- question{name: q.Question[0].Name, qtype: q.Question[0].Qtype}
		m := new(dns.Msg)
		m.SetReply(q)
		switch q.Question[0].Name {
		case "ok.example.", ".":
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 1)})
		case "broken.example.":
			m.Rcode = dns.RcodeServerFailure
		case "drop.example.":
			return
		default:
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})}
	done := make(chan error, 1)
	go func() { done <- srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { srv.Shutdown(); <-done })
	return addrPort(pc.LocalAddr()), asked
}

func TestDNSCheck(t *testing.T) {
	t.Parallel() // waits out timeouts
	tests := []struct {
		name   string
		edit   func(*fsm.HealthCheck)
		asked  question
		up     bool
		kind   error
		reason string
	}{
		{"defaults ask . A and want NOERROR", nil, question{".", dns.TypeA}, true, nil, "DNS NOERROR"},
		{"the name and type asked are the spec's", func(c *fsm.HealthCheck) { c.Query, c.QueryType = "ok.example", "AAAA" }, question{"ok.example.", dns.TypeAAAA}, true, nil, "DNS NOERROR"},
		{"another rcode than NOERROR is down", func(c *fsm.HealthCheck) { c.Query = "missing.example" }, question{"missing.example.", dns.TypeA}, false, ErrStatus, "DNS NXDOMAIN, want NOERROR"},
		{"SERVFAIL is down", func(c *fsm.HealthCheck) { c.Query = "broken.example" }, question{"broken.example.", dns.TypeA}, false, ErrStatus, "DNS SERVFAIL, want NOERROR"},
		{"the expected rcode is up", func(c *fsm.HealthCheck) { c.Query, c.RCode = "missing.example", "NXDOMAIN" }, question{"missing.example.", dns.TypeA}, true, nil, "DNS NXDOMAIN"},
		{"an unexpected NOERROR is down", func(c *fsm.HealthCheck) { c.Query, c.RCode = "ok.example", "NXDOMAIN" }, question{"ok.example.", dns.TypeA}, false, ErrStatus, "DNS NOERROR, want NXDOMAIN"},
	}
	families(t, func(t *testing.T, lo netip.Addr) {
		to, asked := dnsServer(t, lo)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := run(t, spec(t, fsm.CheckDNS, generous, tt.edit), CheckerConfig{}, to)
				if tt.up {
					wantUp(t, r, tt.reason)
				} else {
					wantDown(t, r, tt.kind, tt.reason)
				}
				if got := <-asked; got != tt.asked {
					t.Errorf("server was asked %v, want %v", got, tt.asked)
				}
			})
		}
		t.Run("no answer is a timeout", func(t *testing.T) {
			r := run(t, spec(t, fsm.CheckDNS, short, func(c *fsm.HealthCheck) { c.Query = "drop.example" }), CheckerConfig{}, to)
			wantDown(t, r, ErrTimeout, "timeout after "+short.String()+" (wait for the answer)")
			<-asked
		})
	})
	t.Run("a closed port is ICMP port unreachable", func(t *testing.T) {
		wantDown(t, run(t, spec(t, fsm.CheckDNS, generous, nil), CheckerConfig{}, closedPort(t, "udp", lo4)), ErrRefused, "ICMP port unreachable")
	})
}

func TestChecksOfPortZeroUseTheWellKnownPort(t *testing.T) {
	tests := []struct {
		wellKnown uint16
		want      uint16
		ok        bool
	}{{53, 53, true}, {80, 80, true}, {0, 0, false}}
	for _, tt := range tests {
		got, ok := withPort(netip.AddrPortFrom(lo4, 0), tt.wellKnown)
		if got.Port() != tt.want || ok != tt.ok {
			t.Errorf("withPort(:0, %d) = %v %v, want port %d %v", tt.wellKnown, got, ok, tt.want, tt.ok)
		}
		if got, _ := withPort(netip.AddrPortFrom(lo4, 5353), tt.wellKnown); got.Port() != 5353 {
			t.Errorf("withPort(:5353, %d) = %v, want the real server's port", tt.wellKnown, got)
		}
	}
}
