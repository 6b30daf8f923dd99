package ipvsadm

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/raftlvs/raftlvs/fsm"
)

// goodPrefix is three lines (one a comment) that every bad line in the table follows.
const goodPrefix = "-A -t 10.0.0.1:80 -s rr\n# a comment\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -g\n"

func TestParseRejectsBadLine(t *testing.T) {
	tests := []struct {
		name string
		line string
		kind error
		want string
	}{
		{"weight above the kernel's 16 bits", "-a -t 10.0.0.1:80 -r 10.0.1.2 -w 70000", fsm.ErrInvalid, "weight: 70000 is out of range 0..65535"},
		{"weight not a number", "-a -t 10.0.0.1:80 -r 10.0.1.2 -w many", fsm.ErrInvalid, `-w: weight "many" is not a number`},
		{"negative weight", "-a -t 10.0.0.1:80 -r 10.0.1.2 -w -5", fsm.ErrInvalid, "weight: -5 is out of range"},
		{"real server before its service", "-a -t 10.0.0.9:80 -r 10.0.1.2", fsm.ErrNotFound, "no -A line for service 10.0.0.9:80"},
		{"service added twice", "-A --tcp-service 10.0.0.1:80", fsm.ErrExists, "service 10.0.0.1:80 was already added on line 1"},
		{"real server added twice", "-a -t 10.0.0.1:80 -r 10.0.1.1", fsm.ErrExists, "real server 10.0.1.1:80 was already added to 10.0.0.1:80 on line 3"},
		{"real server of another family", "-a -t 10.0.0.1:80 -r [2001:db8::1]:80 -m", fsm.ErrInvalid, "2001:db8::1 is ipv6 but service"},
		{"dr real server on another port", "-a -t 10.0.0.1:80 -r 10.0.1.2:8080 -g", fsm.ErrInvalid, "dr real servers receive the service port 80, not 8080"},
		{"tun real server on another port", "-a -t 10.0.0.1:80 -r 10.0.1.2:8080 -i", fsm.ErrInvalid, "tun real servers receive the service port 80"},
		{"gue tunnel", "-a -t 10.0.0.1:80 -r 10.0.1.2 -i --tun-type gue --tun-port 6080", fsm.ErrInvalid, "gue tunnels are not supported"},
		{"gre tunnel", "-a -t 10.0.0.1:80 -r 10.0.1.2 -i --tun-type gre --tun-csum", fsm.ErrInvalid, "gre tunnels are not supported"},
		{"unknown tunnel type", "-a -t 10.0.0.1:80 -r 10.0.1.2 -i --tun-type vxlan", fsm.ErrInvalid, `unknown tunnel type "vxlan"`},
		{"tunnel type without -i", "-a -t 10.0.0.1:80 -r 10.0.1.2 -m --tun-type ipip", fsm.ErrInvalid, "--tun-type: tunnel options go only with -i"},
		{"tunnel port with ipip", "-a -t 10.0.0.1:80 -r 10.0.1.2 -i --tun-port 6080", fsm.ErrInvalid, "--tun-port: not valid with an ipip tunnel"},
		{"unknown scheduler", "-A -t 10.0.0.2:80 -s fast", fsm.ErrInvalid, `unknown scheduler "fast"`},
		{"sh flag under another scheduler", "-A -t 10.0.0.2:80 -s rr -b sh-port", fsm.ErrInvalid, "flag sh-port needs scheduler sh, not rr"},
		{"mh flag under the default scheduler", "-A -t 10.0.0.2:80 -b mh-port", fsm.ErrInvalid, "flag mh-port needs scheduler mh, not wlc"},
		{"unknown scheduler flag", "-A -t 10.0.0.2:80 -s sh -b turbo", fsm.ErrInvalid, `unknown scheduler flag "turbo"`},
		{"empty scheduler flags", "-A -t 10.0.0.2:80 -s sh -b ,", fsm.ErrInvalid, "no scheduler flag"},
		{"non-contiguous netmask", "-A -t 10.0.0.2:80 -p -M 255.0.255.0", fsm.ErrInvalid, "255.0.255.0 is not a contiguous netmask"},
		{"IPv4 mask as a prefix length", "-A -t 10.0.0.2:80 -p 60 -M 24", fsm.ErrInvalid, `"24" is not a dotted IPv4 netmask`},
		{"IPv4 mask of zero bits", "-A -t 10.0.0.2:80 -p 60 -M 0.0.0.0", fsm.ErrInvalid, "out of range /1../32"},
		{"IPv6 mask too long", "-A -t [2001:db8::1]:80 -p -M 129", fsm.ErrInvalid, "prefix length 1..128"},
		{"IPv6 mask written dotted", "-A -f 5 -6 -p -M 255.255.255.0", fsm.ErrInvalid, "prefix length 1..128"},
		{"persistence timeout zero", "-A -t 10.0.0.2:80 -p 0", fsm.ErrInvalid, "timeout 0 is out of range 1..2147483647"},
		{"persistence timeout not a number", "-A -t 10.0.0.2:80 -p 1h", fsm.ErrInvalid, `timeout "1h" is not a number`},
		{"port 0 without persistence", "-A -t 10.0.0.2:0 -s rr", fsm.ErrInvalid, "port 0 (all ports) needs persistence"},
		{"persistence engine without persistence", "-A -u 10.0.0.2:5060 --pe sip", fsm.ErrInvalid, "a persistence engine needs persistence"},
		{"unknown persistence engine", "-A -u 10.0.0.2:5060 -p --pe rtsp", fsm.ErrInvalid, `only "sip" is supported`},
		{"one-packet scheduling on tcp", "-A -t 10.0.0.2:80 -o", fsm.ErrInvalid, "one-packet scheduling applies to udp only"},
		{"service option on an -a line", "-a -t 10.0.0.1:80 -r 10.0.1.2 -s rr", fsm.ErrInvalid, "-s: not valid with -a"},
		{"server option on an -A line", "-A -t 10.0.0.2:80 -w 1", fsm.ErrInvalid, "-w: not valid with -A"},
		{"two forwarding methods", "-a -t 10.0.0.1:80 -r 10.0.1.2 -g --masquerading", fsm.ErrInvalid, "--masquerading: conflicts with -g"},
		{"option given twice", "-a -t 10.0.0.1:80 -r 10.0.1.2 -w 1 -w 2", fsm.ErrInvalid, "-w: given twice"},
		{"two services on a line", "-A -t 10.0.0.2:80 -u 10.0.0.2:53", fsm.ErrInvalid, "-u: conflicts with -t"},
		{"-6 with an address service", "-A -t 10.0.0.2:80 -6", fsm.ErrInvalid, "-6: goes only with -f"},
		{"option without its value", "-A -t", fsm.ErrInvalid, "-t: needs a value"},
		{"long option with an empty value", "-A -t 10.0.0.2:80 --scheduler=", fsm.ErrInvalid, "--scheduler: needs a value"},
		{"flag with a value", "-A -u 10.0.0.2:53 --ops=yes", fsm.ErrInvalid, "--ops: takes no value"},
		{"unknown option", "-A -t 10.0.0.2:80 --frobnicate", fsm.ErrInvalid, "--frobnicate: unknown option"},
		{"listing option", "-A -t 10.0.0.2:80 -n", fsm.ErrInvalid, "-n: unknown option"},
		{"second command", "-A -t 10.0.0.2:80 -a", fsm.ErrInvalid, "-a: a line holds one command"},
		{"unsupported command", "-C", fsm.ErrInvalid, "-C: not supported: a rule file holds only -A and -a lines"},
		{"edit command", "-e -t 10.0.0.1:80 -r 10.0.1.1 -w 2", fsm.ErrInvalid, "-e: not supported"},
		{"not a command", "add 10.0.0.2", fsm.ErrInvalid, "a line must start with -A (add service) or -a (add server)"},
		{"stray word", "-A -t 10.0.0.2:80 fast", fsm.ErrInvalid, "fast: unexpected argument"},
		{"host name", "-A -t www.example.com:80", fsm.ErrInvalid, `"www.example.com" is not a numeric IP address`},
		{"port name", "-A -t 10.0.0.2:http", fsm.ErrInvalid, `port "http" is not a number`},
		{"port too large", "-A -t 10.0.0.2:65536", fsm.ErrInvalid, "port 65536 is out of range"},
		{"empty port", "-A -t 10.0.0.2:", fsm.ErrInvalid, `port "" is not a number`},
		{"IPv6 in brackets without a port", "-A -t [2001:db8::1]", fsm.ErrInvalid, "write an IPv6 address with a port as [ADDR]:PORT"},
		{"IPv4 in brackets", "-A -t [10.0.0.2]:80", fsm.ErrInvalid, "only IPv6 addresses go in brackets"},
		{"IPv6 zone", "-A -t [fe80::1%eth0]:80", fsm.ErrInvalid, "have no zone"},
		{"IPv4-mapped IPv6", "-A -t [::ffff:10.0.0.2]:80", fsm.ErrInvalid, "IPv4-mapped"},
		{"multicast VIP", "-A -t 224.0.0.1:80", fsm.ErrInvalid, "224.0.0.1 is a multicast address"},
		{"real server without -r", "-a -t 10.0.0.1:80 -w 1", fsm.ErrInvalid, "-a: needs -r ADDR[:PORT]"},
		{"line without a service", "-A -s rr", fsm.ErrInvalid, "-A: needs a service"},
		{"fwmark zero", "-A -f 0", fsm.ErrInvalid, "fwmark 0 is out of range 1..4294967295"},
		{"fwmark too large", "-A -f 4294967296", fsm.ErrInvalid, "out of range"},
		{"fwmark in hex", "-A -f 0x10", fsm.ErrInvalid, `fwmark "0x10" is not a number`},
		{"threshold not a number", "-a -t 10.0.0.1:80 -r 10.0.1.2 -x lots", fsm.ErrInvalid, `threshold "lots" is not a number`},
		{"threshold above ipvsadm's range", "-a -t 10.0.0.1:80 -r 10.0.1.2 -x 70000", fsm.ErrInvalid, "thresholds are 0..65535"},
		{"lower threshold above upper", "-a -t 10.0.0.1:80 -r 10.0.1.2 -x 10 -y 20", fsm.ErrInvalid, "20 is above the upper threshold 10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules, err := Parse(strings.NewReader(goodPrefix + tt.line + "\n-A -t 10.0.0.3:80\n"))
			if rules != nil {
				t.Errorf("Parse returned rules with its error: %+v", rules)
			}
			var le *LineError
			if !errors.As(err, &le) {
				t.Fatalf("Parse error = %v, want a *LineError", err)
			}
			if le.Line != 4 {
				t.Errorf("error on line %d, want 4", le.Line)
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("error %q is not %v", err, tt.kind)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "line 4: "+tt.line+": ") {
				t.Errorf("error %q does not quote the line", err)
			}
		})
	}
}

func TestLineErrorReadsAsTheBrief(t *testing.T) {
	_, err := Parse(strings.NewReader("-A -t 10.0.0.1:80\n\n\n\n\n\n-a -t 10.0.0.1:80 -r 10.0.1.1 -m -w 70000\n"))
	want := "line 7: -a -t 10.0.0.1:80 -r 10.0.1.1 -m -w 70000: weight: 70000 is out of range 0..65535"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v\nwant    %s", err, want)
	}
	var fe *fsm.FieldError
	if !errors.As(err, &fe) || fe.Field != "weight" {
		t.Errorf("error does not unwrap to the fsm's FieldError for weight: %#v", err)
	}
}

func TestLineErrorShortensLongLines(t *testing.T) {
	line := "-A -t 10.0.0.1:80 -s rr " + strings.Repeat("-o ", 100)
	_, err := Parse(strings.NewReader(line))
	if err == nil || len(err.Error()) > 250 || !strings.Contains(err.Error(), "…") {
		t.Fatalf("error = %v, want the line cut short", err)
	}
}

func TestParseRejectsOverlongLine(t *testing.T) {
	input := "-A -t 10.0.0.1:80\n" + strings.Repeat("x", maxLineLen+1) + "\n"
	_, err := Parse(strings.NewReader(input))
	var le *LineError
	if !errors.As(err, &le) || le.Line != 2 || !errors.Is(err, fsm.ErrInvalid) {
		t.Fatalf("error = %v, want an invalid line 2", err)
	}
}

func TestParseReportsReadError(t *testing.T) {
	broken := io.MultiReader(strings.NewReader("-A -t 10.0.0.1:80\n"), iotest.ErrReader(io.ErrUnexpectedEOF))
	_, err := Parse(broken)
	var le *LineError
	if !errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &le) {
		t.Fatalf("error = %v, want the reader's error, not a line's", err)
	}
}

func TestParseAcceptsEmptyInput(t *testing.T) {
	for _, input := range []string{"", "\n\n", "# nothing here\n", "ipvsadm\n", "   \t\r\n"} {
		rules, err := Parse(strings.NewReader(input))
		if err != nil || len(rules.Services) != 0 || len(rules.RealServers) != 0 {
			t.Errorf("Parse(%q) = %+v, %v; want an empty rule set", input, rules, err)
		}
	}
}

func TestParseDefaults(t *testing.T) {
	rules, err := Parse(strings.NewReader("-A -t 10.0.0.1:80 -p\n-a -t 10.0.0.1:80 -r 10.0.1.1\n-A -f 5 -6\n-a -f 5 -6 -r 2001:db8::5 -m\n"))
	if err != nil {
		t.Fatal(err)
	}
	svc, rs := rules.Services[0], rules.RealServers[0]
	if svc.Name != "tcp-10.0.0.1-80" || svc.Scheduler != "wlc" || svc.Persistence != 360 || svc.PersistMask != 32 {
		t.Errorf("service = %+v, want ipvsadm's defaults (wlc, -p 360 per client) and the default name", svc)
	}
	if svc.Forwarding != fsm.DR || rs.Forwarding != "" || rs.Weight != 1 || rs.Port != 80 {
		t.Errorf("real server = %+v of %s service, want dr (inherited), weight 1, port 80", rs, svc.Forwarding)
	}
	if rs.Origin != fsm.OriginOperator || rs.Admin != fsm.Active || rs.Health != fsm.HealthUnknown {
		t.Errorf("real server = %+v, want the fsm's normalized defaults", rs)
	}
	fwm, fwmRS := rules.Services[1], rules.RealServers[1]
	if fwm.Name != "fwm6-5" || fwm.Family != fsm.IPv6 || fwm.PersistMask != 128 || fwmRS.Port != 0 {
		t.Errorf("fwmark service %+v, real server %+v: want fwm6-5, ipv6, /128, port 0", fwm, fwmRS)
	}
}

func TestParseSettlesForwarding(t *testing.T) {
	input := `-A -t 10.0.0.1:80
-a -t 10.0.0.1:80 -r 10.0.1.1 -m
-a -t 10.0.0.1:80 -r 10.0.1.2 -m
-A -t 10.0.0.2:80
-a -t 10.0.0.2:80 -r 10.0.1.1 -i
-a -t 10.0.0.2:80 -r 10.0.1.2 -g
-a -t 10.0.0.2:80 -r 10.0.1.3 -i
-A -t 10.0.0.3:80
-a -t 10.0.0.3:80 -r 10.0.1.1 -m
-a -t 10.0.0.3:80 -r 10.0.1.2 -i
-A -t 10.0.0.4:80
`
	rules, err := Parse(strings.NewReader(input))
	if err != nil {
		t.Fatal(err)
	}
	methods := map[string]fsm.Forwarding{}
	for _, s := range rules.Services {
		methods[s.Name] = s.Forwarding
	}
	for _, rs := range rules.RealServers {
		methods[rs.Service+"/"+rs.Addr.String()] = rs.Forwarding
	}
	want := map[string]fsm.Forwarding{
		"tcp-10.0.0.1-80": fsm.NAT, "tcp-10.0.0.1-80/10.0.1.1": "", "tcp-10.0.0.1-80/10.0.1.2": "",
		"tcp-10.0.0.2-80": fsm.TUN, "tcp-10.0.0.2-80/10.0.1.1": "", "tcp-10.0.0.2-80/10.0.1.2": fsm.DR, "tcp-10.0.0.2-80/10.0.1.3": "",
		"tcp-10.0.0.3-80": fsm.NAT, "tcp-10.0.0.3-80/10.0.1.1": "", "tcp-10.0.0.3-80/10.0.1.2": fsm.TUN,
		"tcp-10.0.0.4-80": fsm.DR,
	}
	for k, w := range want {
		if methods[k] != w {
			t.Errorf("%s forwarding = %q, want %q", k, methods[k], w)
		}
	}
}

func TestParseKeepsThresholds(t *testing.T) {
	rules, err := Parse(strings.NewReader("-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.1.1 --u-threshold 100 -y 10\n"))
	if err != nil {
		t.Fatal(err)
	}
	if rs := rules.RealServers[0]; rs.UpperThreshold != 100 || rs.LowerThreshold != 10 {
		t.Errorf("thresholds = %d/%d, want 100/10", rs.UpperThreshold, rs.LowerThreshold)
	}
}

func TestParseDropsMaskWithoutPersistence(t *testing.T) {
	rules, err := Parse(strings.NewReader("-A -t 10.0.0.1:80 -M 255.255.255.0\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s := rules.Services[0]; s.Persistence != 0 || s.PersistMask != 32 {
		t.Errorf("service = %+v, want no persistence and the default mask", s)
	}
}
