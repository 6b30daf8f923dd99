package keepalived

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/raftlvs/raftlvs/fsm"
)

func mustTranslate(t *testing.T, in string) *Plan {
	t.Helper()
	plan, err := translateString(t, in)
	if err != nil {
		t.Fatalf("translate: %v", err)
	}
	applyPlan(t, plan) // every plan must apply
	return plan
}

func checkJSON(c *fsm.HealthCheck) string {
	js, _ := json.Marshal(c)
	return string(js)
}

func reportText(p *Plan) string {
	var b strings.Builder
	for _, f := range p.Report {
		b.WriteString(f.String() + "\n")
	}
	return b.String()
}

// checkOf builds a one-real-server service with the given checker block.
func checkOf(vsLines, checker string) string {
	return vs(vsLines + "    real_server 10.0.0.11 80 {\n        " + checker + "\n    }")
}

func TestKeepalivedsCheckDefaultsAreWrittenOut(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"tcp", checkOf("", "TCP_CHECK {\n}"),
			`{"type":"tcp","interval_ms":60000,"timeout_ms":5000,"rise":1,"fall":2}`},
		{"http accepts 2xx", checkOf("", "HTTP_GET {\nurl {\npath /\n}\n}"),
			`{"type":"http","interval_ms":60000,"timeout_ms":5000,"rise":1,"fall":2,"method":"GET","path":"/","status":["200-299"]}`},
		{"dns retries three times", checkOf("", "DNS_CHECK {\n}"),
			`{"type":"dns","interval_ms":60000,"timeout_ms":5000,"rise":1,"fall":4,"query":".","query_type":"SOA","rcode":"NOERROR"}`},
		{"misc does not retry, and its bound is the delay_loop", checkOf("    delay_loop 20\n", "MISC_CHECK {\nmisc_path /bin/true\n}"),
			`{"type":"exec","interval_ms":20000,"timeout_ms":20000,"rise":1,"fall":1,"command":["/bin/true"]}`},
		{"checker over real server over virtual server", vs("    delay_loop 30\n    connect_timeout 3\n    retry 4\n    alpha\n    real_server 10.0.0.11 80 {\n        delay_loop 20\n        retry 5\n        TCP_CHECK {\n            delay_loop 10\n        }\n    }"),
			`{"type":"tcp","interval_ms":10000,"timeout_ms":3000,"rise":1,"fall":6,"start_down":true}`},
		{"alpha off on the real server", vs("    alpha\n    real_server 10.0.0.11 80 {\n        alpha off\n        TCP_CHECK {\n        }\n    }"),
			`{"type":"tcp","interval_ms":60000,"timeout_ms":5000,"rise":1,"fall":2}`},
		{"virtualhost from the virtual server", checkOf("    virtualhost www.example.com\n", "HTTP_GET {\nurl {\npath /\n}\n}"),
			`{"type":"http","interval_ms":60000,"timeout_ms":5000,"rise":1,"fall":2,"method":"GET","path":"/","host":"www.example.com","status":["200-299"]}`},
		{"url virtualhost wins", checkOf("    virtualhost www.example.com\n", "HTTP_GET {\nvirtualhost b.example.com\nurl {\npath /\nvirtualhost c.example.com\n}\n}"),
			`{"type":"http","interval_ms":60000,"timeout_ms":5000,"rise":1,"fall":2,"method":"GET","path":"/","host":"c.example.com","status":["200-299"]}`},
		{"sub-second timers", checkOf("", "TCP_CHECK {\ndelay_loop 0.25\nconnect_timeout .1\n}"),
			`{"type":"tcp","interval_ms":250,"timeout_ms":100,"rise":1,"fall":2}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := mustTranslate(t, tc.in)
			if got := checkJSON(plan.Services[0].HealthCheck); got != tc.want {
				t.Errorf("check\n  %s\nwant\n  %s", got, tc.want)
			}
		})
	}
}

func TestTimeoutLongerThanTheIntervalIsClampedAndReported(t *testing.T) {
	plan := mustTranslate(t, checkOf("    delay_loop 2\n", "TCP_CHECK {\n}"))
	if h := plan.Services[0].HealthCheck; h.TimeoutMS != 2000 || h.IntervalMS != 2000 {
		t.Errorf("check %s", checkJSON(h))
	}
	if r := reportText(plan); !strings.Contains(r, ":6:9: differs: TCP_CHECK: keepalived's default connect_timeout, 5s, is longer than the interval 2s") {
		t.Errorf("report:\n%s", r)
	}
}

func TestInhibitOnFailureFollowsMostRealServers(t *testing.T) {
	rs := func(addr, extra string) string {
		return "    real_server " + addr + " 80 {\n" + extra + "    }\n"
	}
	for _, tc := range []struct {
		name, body string
		want       fsm.DownAction
		reported   []string
	}{
		{"all inherit", "    inhibit_on_failure\n" + rs("10.0.0.1", "") + rs("10.0.0.2", ""), fsm.DownInhibit, nil},
		{"majority", rs("10.0.0.1", "inhibit_on_failure\n") + rs("10.0.0.2", "inhibit_on_failure on\n") + rs("10.0.0.3", ""), fsm.DownInhibit, []string{"10.0.0.3"}},
		{"tie is keepalived's default", rs("10.0.0.1", "inhibit_on_failure\n") + rs("10.0.0.2", ""), fsm.DownRemove, []string{"10.0.0.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := mustTranslate(t, vs(tc.body))
			if got := plan.Services[0].OnDown; got != tc.want {
				t.Errorf("on_down %s, want %s", got, tc.want)
			}
			n := strings.Count(reportText(plan), "differs: inhibit_on_failure")
			if n != len(tc.reported) {
				t.Errorf("%d real servers reported, want %v:\n%s", n, tc.reported, reportText(plan))
			}
		})
	}
}

func TestOneCheckPerRealServer(t *testing.T) {
	in := vs(`    real_server 10.0.0.1 80 {
        TCP_CHECK {
            connect_port 81
        }
    }
    real_server 10.0.0.2 80 {
        TCP_CHECK {
            connect_port 81
        }
    }
    real_server 10.0.0.3 80 {
        PING_CHECK {
        }
        HTTP_GET {
            url {
                path /a
            }
            url {
                path /b
            }
        }
        TCP_CHECK {
        }
    }
    real_server 10.0.0.4 80 {
    }`)
	plan := mustTranslate(t, in)
	if h := plan.Services[0].HealthCheck; h == nil || h.Type != fsm.CheckTCP || h.Port != 81 {
		t.Errorf("the service's check is %s, want the tcp check most real servers have", checkJSON(h))
	}
	own := map[string]fsm.CheckType{}
	for _, r := range plan.RealServers {
		if r.HealthCheck != nil {
			own[r.Addr.String()] = r.HealthCheck.Type
		}
	}
	if len(own) != 2 || own["10.0.0.3"] != fsm.CheckHTTP || own["10.0.0.4"] != fsm.CheckNone {
		t.Errorf("real servers' own checks %v, want 10.0.0.3 http and 10.0.0.4 none", own)
	}
	r := reportText(plan)
	for _, want := range []string{
		":15:9: unmapped: PING_CHECK: raftlvs has no ICMP echo check",
		":21:13: differs: url: raftlvs checks one url per real server: only /a",
		":25:9: differs: TCP_CHECK: raftlvs runs one check per real server: only the HTTP_GET at /etc/keepalived/keepalived.conf:17:9 is imported",
	} {
		if !strings.Contains(r, want) {
			t.Errorf("report lacks %q:\n%s", want, r)
		}
	}
}

func TestKeepalivedsWarningDefaultsAreFollowedAndNoted(t *testing.T) {
	plan := mustTranslate(t, "virtual_server 192.0.2.10 53 {\n    real_server 10.0.0.11 53 {\n    }\n}\nvirtual_server 192.0.2.10 80 {\n    protocol TCP\n}\n")
	s := plan.Services[0]
	if s.Protocol != fsm.UDP || s.Scheduler != "wlc" || s.Forwarding != fsm.NAT {
		t.Errorf("service %+v, want keepalived's udp, wlc, nat", s)
	}
	r := reportText(plan)
	for _, want := range []string{
		":1:1: note: lb_algo: no scheduler given: wlc",
		":1:1: note: lvs_method: no lvs_method given: NAT",
		":1:1: note: protocol: no protocol given: UDP, as keepalived chooses (with a warning)",
		":5:1: unmapped: virtual_server: it has no real_server: keepalived ignores such a virtual_server",
	} {
		if !strings.Contains(r, want) {
			t.Errorf("report lacks %q:\n%s", want, r)
		}
	}
	if len(plan.Services) != 1 {
		t.Errorf("%d services, want the empty one left out", len(plan.Services))
	}
}

func TestGroupsExpandRangesAndMarks(t *testing.T) {
	plan := mustTranslate(t, `virtual_server_group G {
    2001:db8::fe-100 443
    2001:db8::1 0
    fwmark 5 inet6
}
virtual_server group G {
    protocol TCP
    persistence_timeout 60
    real_server 2001:db8:1::1 443 {
    }
}
`)
	var names []string
	for _, s := range plan.Services {
		names = append(names, s.Name)
	}
	want := "tcp-2001:db8::fe-443 tcp-2001:db8::ff-443 tcp-2001:db8::100-443 tcp-2001:db8::1-0 fwm6-5"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("services %s\nwant     %s", got, want)
	}
	if len(plan.RealServers) != 5 {
		t.Errorf("%d real servers, want one in each service", len(plan.RealServers))
	}
}

func TestGroupOfTwoFamiliesNeedsTunnels(t *testing.T) {
	_, err := translateString(t, "virtual_server_group G {\n    192.0.2.1 80\n    2001:db8::1 80\n}\nvirtual_server group G {\n    protocol TCP\n    real_server 10.0.0.1 80 {\n    }\n}\n")
	if err == nil || !strings.Contains(err.Error(), ":7:5: real_server 10.0.0.1 is ipv4 but the service is ipv6") {
		t.Errorf("error %v", err)
	}
}

func TestVIPsAreListedWithTheirUse(t *testing.T) {
	plan := mustTranslate(t, `vrrp_instance VI_1 {
    virtual_ipaddress {
        192.0.2.10/24 dev eth0
        192.0.2.11
        not-an-address
    }
}
`+vs("    real_server 10.0.0.11 80 {\n    }"))
	if len(plan.VIPs) != 2 || !plan.VIPs[0].Used || plan.VIPs[1].Used || plan.VIPs[1].Pos.Line != 4 {
		t.Errorf("VIPs %+v", plan.VIPs)
	}
	r := reportText(plan)
	for _, want := range []string{
		":1:1: unmapped: vrrp_instance VI_1: VRRP is not imported",
		"its VIPs: 192.0.2.10 192.0.2.11",
		":4:9: note: virtual_ipaddress: 192.0.2.11 (vrrp_instance VI_1) is the address of no virtual_server",
		`:5:9: note: virtual_ipaddress: "not-an-address" is not an address`,
	} {
		if !strings.Contains(r, want) {
			t.Errorf("report lacks %q:\n%s", want, r)
		}
	}
}
