package keepalived

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raftlvs/raftlvs/fsm"
)

// importFile parses and translates one file of testdata/bad.
func importFile(t *testing.T, name string) (*Plan, error) {
	t.Helper()
	cfg, err := Parse(os.DirFS(filepath.Join("testdata", "bad")), "/etc/keepalived/"+name, Options{})
	if err != nil {
		return nil, err
	}
	return Translate(cfg, Limits{})
}

func TestBadFilesGiveTheExactPlace(t *testing.T) {
	for _, tc := range []struct {
		file string
		kind error
		want string
	}{
		{"unknown-keyword.conf", ErrUnknownKeyword, `/etc/keepalived/unknown-keyword.conf:5:9: unknown keyword "wieght" in real_server`},
		{"unbalanced-brace.conf", ErrSyntax, "/etc/keepalived/unbalanced-brace.conf:1:30: the block of virtual_server is not closed at the end of the configuration"},
		{"missing-include.conf", ErrInclude, "/etc/keepalived/missing-include.conf:5:1: include services/web.conf: /etc/keepalived/services/web.conf does not exist"},
		{"out-of-range.conf", ErrValue, `/etc/keepalived/out-of-range.conf:5:16: weight "70000": want an integer in 0..65535`},
	} {
		t.Run(tc.file, func(t *testing.T) {
			_, err := importFile(t, tc.file)
			if !errors.Is(err, tc.kind) || err.Error() != tc.want && !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error\n  %v\nwant %v starting\n  %s", err, tc.kind, tc.want)
			}
		})
	}
}

// translateString parses and translates a configuration given inline.
func translateString(t *testing.T, in string) (*Plan, error) {
	t.Helper()
	cfg, err := parseString(t, in, Options{})
	if err != nil {
		return nil, err
	}
	return Translate(cfg, Limits{})
}

// vs wraps real-server lines in a TCP virtual server on line 1.
func vs(body string) string {
	return "virtual_server 192.0.2.10 80 {\n    lb_algo rr\n    protocol TCP\n" + body + "\n}\n"
}

func TestTranslateRefusesWithThePlace(t *testing.T) {
	const rs = "    real_server 10.0.0.11 80 {\n    }"
	for _, tc := range []struct {
		name, in string
		kind     error
		want     string
	}{
		{"scheduler", "virtual_server 192.0.2.10 80 {\n    lb_algo rrr\n" + rs + "\n}", ErrValue, `:2:13: lb_algo "rrr": not a kernel scheduler`},
		{"sh flag without sh", "virtual_server 192.0.2.10 80 {\n    lb_algo rr\n    sh-port\n    protocol TCP\n" + rs + "\n}", ErrValue, ":3:5: sh-port applies to the sh scheduler, not rr (keepalived ignores it)"},
		{"sh flag before sh", "virtual_server 192.0.2.10 80 {\n    sh-port\n    lb_algo sh\n    protocol TCP\n" + rs + "\n}", ErrValue, ":2:5: sh-port comes before lvs_sched sh"},
		{"tunnel type gue", vs("    lvs_method TUN type gue port 6080\n" + rs), ErrUnsupported, ":4:25: TUN type gue: raftlvs programs IPIP tunnels only"},
		{"tunnel options on NAT", vs("    lvs_method NAT type ipip\n" + rs), ErrValue, ":4:20: lvs_method NAT takes no tunnel options"},
		{"method", vs("    lb_kind FULLNAT\n" + rs), ErrValue, `:4:13: lb_kind "FULLNAT": want NAT, DR or TUN`},
		{"persistence", vs("    persistence_timeout 9999999\n" + rs), ErrValue, ":4:25: persistence_timeout \"9999999\": want an integer in 1..2678400"},
		{"granularity not contiguous", vs("    persistence_granularity 255.0.255.0\n" + rs), ErrUnsupported, ":4:29: persistence_granularity 255.0.255.0 is not a contiguous netmask"},
		{"granularity too long", vs("    persistence_granularity 64\n" + rs), ErrValue, ":4:29: persistence_granularity /64 is longer than an ipv4 address"},
		{"engine", vs("    persistence_engine http\n" + rs), ErrValue, `persistence_engine "http": the kernel has only sip`},
		{"ops on tcp", vs("    ops\n" + rs), ErrValue, ":4:5: ops (one-packet scheduling) applies to UDP services only"},
		{"port 0 without persistence", "virtual_server 192.0.2.10 0 {\n    protocol TCP\n" + rs + "\n}", ErrValue, ":1:1: port 0 (every port) needs persistence_timeout"},
		{"quorum above the weights", vs("    quorum 3\n" + rs), ErrValue, ":4:12: quorum 3 is above the total weight 1 of the real servers (keepalived would lower it to 1)"},
		{"quorum zero", vs("    quorum 0\n" + rs), ErrValue, "(keepalived would set it to 1)"},
		{"hysteresis", vs("    quorum 1\n    hysteresis 1\n" + rs), ErrValue, ":5:16: hysteresis 1 is not below the quorum 1 (keepalived would lower it to 0)"},
		{"duplicate real server", vs(rs + "\n" + rs), ErrValue, ":6:5: real_server 10.0.0.11:80 is in TCP 192.0.2.10:80 twice (first at /etc/keepalived/keepalived.conf:4:5; keepalived drops the second)"},
		{"duplicate virtual server", vs(rs) + vs(rs), ErrValue, ":7:1: virtual_server TCP 192.0.2.10:80 is defined twice (first at /etc/keepalived/keepalived.conf:1:1)"},
		{"DR port", vs("    lb_kind DR\n    real_server 10.0.0.11 8080 {\n    }"), ErrValue, ":5:27: a DR real server receives the service port 80, not 8080"},
		{"family", vs("    real_server 2001:db8::1 80 {\n    }"), ErrValue, ":4:5: real_server 2001:db8::1 is ipv6 but the service is ipv4 (keepalived skips it)"},
		{"tunnel across families", vs("    lb_kind TUN\n    real_server 2001:db8::1 80 {\n    }"), ErrUnsupported, "raftlvs tunnels within one family only"},
		{"weight", vs("    real_server 10.0.0.11 80 {\n        weight -1\n    }"), ErrValue, `:5:16: weight "-1"`},
		{"threshold", vs("    real_server 10.0.0.11 80 {\n        uthreshold 10\n        lthreshold 20\n    }"), ErrValue, "lower_threshold: 20 is above the upper threshold 10"},
		{"address", vs("    real_server 10.0.0.300 80 {\n    }"), ErrValue, `:4:17: real_server "10.0.0.300": want a numeric IPv4 or IPv6 address`},
		{"port", vs("    real_server 10.0.0.11 65536 {\n    }"), ErrValue, `:4:27: port "65536"`},
		{"unknown group", "virtual_server group NOPE {\n" + rs + "\n}", ErrValue, ":1:22: virtual_server group NOPE: no virtual_server_group of that name"},
		{"group range backwards", "virtual_server_group G {\n    10.0.0.9-3 80\n}", ErrValue, `:2:5: group address "10.0.0.9-3": the end must be a last octet`},
		{"group prefix host bits", "virtual_server_group G {\n    10.0.0.1/24 80\n}", ErrValue, "the address has bits set beyond the prefix length"},
		{"group too large", "virtual_server_group G {\n    10.0.0.0/8 80\n}\nvirtual_server group G {\n    protocol TCP\n" + rs + "\n}", ErrLimit, ":4:22: virtual_server group G makes 16777216 services, beyond the limit of 100000"},
		{"group defined twice", "virtual_server_group G {\n 10.0.0.1 80\n}\nvirtual_server_group G {\n 10.0.0.2 80\n}", ErrValue, ":4:1: virtual_server_group G is defined twice"},
		{"delay_loop too long", vs("    delay_loop 7200\n    real_server 10.0.0.11 80 {\n        TCP_CHECK {\n        }\n    }"), ErrValue, ":4:16: delay_loop 7200s: raftlvs checks every 100ms to 1h0m0s"},
		{"timer", vs("    delay_loop 1,5\n" + rs), ErrValue, `:4:16: delay_loop "1,5": want seconds`},
		{"retry", vs("    real_server 10.0.0.11 80 {\n        TCP_CHECK {\n            retry 200\n        }\n    }"), ErrValue, ":6:19: retry 200: raftlvs counts at most 100 failures in a row"},
		{"status code", vs("    real_server 10.0.0.11 80 {\n        HTTP_GET {\n            url {\n                path /\n                status_code 200 700\n            }\n        }\n    }"), ErrValue, ":8:33: status_code: \"700\" is not within 100..599"},
		{"digest", vs("    real_server 10.0.0.11 80 {\n        HTTP_GET {\n            url {\n                path /\n                digest abc\n            }\n        }\n    }"), ErrValue, `:8:24: digest "abc": want an MD5 digest`},
		{"url without path", vs("    real_server 10.0.0.11 80 {\n        HTTP_GET {\n            url {\n            }\n        }\n    }"), ErrValue, ":6:13: url needs a path"},
		{"http without url", vs("    real_server 10.0.0.11 80 {\n        HTTP_GET {\n        }\n    }"), ErrValue, ":5:9: HTTP_GET needs a url block"},
		{"regex not RE2", vs("    real_server 10.0.0.11 80 {\n        HTTP_GET {\n            url {\n                path /\n                regex (?<=a)b\n            }\n        }\n    }"), ErrUnsupported, `:8:23: regex "(?<=a)b" is not RE2 syntax`},
		{"relative misc path", vs("    real_server 10.0.0.11 80 {\n        MISC_CHECK {\n            misc_path \"check.sh -v\"\n        }\n    }"), ErrValue, `:5:9: MISC_CHECK: health_check.command: "check.sh": give the program's absolute path`},
		{"misc without path", vs("    real_server 10.0.0.11 80 {\n        MISC_CHECK {\n        }\n    }"), ErrValue, ":5:9: MISC_CHECK needs a misc_path"},
		{"misc unquoted arguments", vs("    real_server 10.0.0.11 80 {\n        MISC_CHECK {\n            misc_path /bin/check -v\n        }\n    }"), ErrValue, `:6:34: misc_path takes 1 value, not "-v"`},
		{"dns type", vs("    real_server 10.0.0.11 80 {\n        DNS_CHECK {\n            type PTR\n        }\n    }"), ErrValue, `:6:18: DNS_CHECK type "PTR"`},
		{"payload", vs("    real_server 10.0.0.11 80 {\n        UDP_CHECK {\n            payload 0g\n        }\n    }"), ErrValue, ":6:21: payload: want hex digits"},
		{"checker misplaced", vs("    TCP_CHECK {\n    }\n" + rs), ErrUnknownKeyword, `:4:5: unknown keyword "TCP_CHECK" in virtual_server (a checker belongs in a real_server)`},
		{"block where none goes", vs("    lb_algo rr {\n    }\n" + rs), ErrSyntax, ":4:16: lb_algo takes no { } block"},
		{"block missing", vs("    real_server 10.0.0.11 80\n"), ErrSyntax, ":4:5: real_server needs a { } block"},
		{"value missing", vs("    lb_algo\n" + rs), ErrValue, ":4:5: lb_algo needs 1 value"},
		{"unknown global", "global_defs {\n    router_id x\n    lvs_sync_deamon eth0\n}", ErrUnknownKeyword, `:3:5: unknown keyword "lvs_sync_deamon" in global_defs`},
		{"unknown top level", "virtual_servers 192.0.2.10 80 {\n}", ErrUnknownKeyword, `:1:1: unknown keyword "virtual_servers" in the top level`},
		{"off in a virtual_server", vs("    alpha off\n" + rs), ErrValue, ":4:11: alpha off in a virtual_server: keepalived ignores the value there"},
		{"bool", vs("    real_server 10.0.0.11 80 {\n        alpha maybe\n    }"), ErrValue, `:5:15: alpha "maybe": want on|off|true|false|yes|no`},
		{"sorry server family", vs("    sorry_server 2001:db8::9 80\n" + rs), ErrValue, ":4:5: sorry_server 2001:db8::9 is not ipv4 like the service"},
		{"sorry server method", vs("    lb_kind DR\n    sorry_server 192.0.2.99 80\n    sorry_server_lvs_method NAT\n" + rs), ErrUnsupported, ":6:29: sorry_server_lvs_method NAT: raftlvs forwards to the sorry server with the service's method (DR)"},
		{"inhibit without sorry server", vs("    sorry_server_inhibit\n" + rs), ErrValue, ":4:5: sorry_server_inhibit before or without a sorry_server"},
		{"ip_family conflict", vs("    ip_family inet6\n" + rs), ErrValue, ":4:15: ip_family ipv6 conflicts with the address 192.0.2.10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := translateString(t, tc.in)
			if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error\n  %v\nwant %v containing\n  %s", err, tc.kind, tc.want)
			}
		})
	}
}

func TestTranslateCollectsEveryError(t *testing.T) {
	_, err := translateString(t, vs("    lb_kind XX\n    delay_loop y\n    real_server 10.0.0.11 80 {\n        weight z\n    }"))
	if err == nil {
		t.Fatal("accepted")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 3 {
		t.Errorf("want the three errors, one a line:\n%v", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Pos.Line != 4 {
		t.Errorf("errors.As finds %v", e)
	}
}

func TestFsmErrorsKeepTheirClass(t *testing.T) {
	_, err := translateString(t, vs("    real_server 10.0.0.11 80 {\n        uthreshold 10\n        lthreshold 20\n    }"))
	if !errors.Is(err, fsm.ErrInvalid) || !errors.Is(err, ErrValue) {
		t.Errorf("error %v is not both ErrValue and fsm.ErrInvalid", err)
	}
}
