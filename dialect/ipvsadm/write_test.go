package ipvsadm

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/raftlvs/raftlvs/fsm"
)

// A rule set from the cluster state carries what the ipvsadm format has no words for.
func TestWriteLeavesOutWhatTheFormatCannotExpress(t *testing.T) {
	svc := fsm.Service{
		Name: "web", Protocol: fsm.TCP, VIP: netip.MustParseAddr("192.0.2.10"), Port: 80,
		Scheduler: "wrr", Forwarding: fsm.DR, Quorum: 2, Hysteresis: 1,
		HealthCheck: &fsm.HealthCheck{Type: "http", Path: "/health"},
		SorryServer: netip.MustParseAddrPort("192.0.2.99:80"),
	}
	servers := []fsm.RealServer{
		{Service: "web", Addr: netip.MustParseAddr("198.51.100.2"), Port: 80, Weight: 5, UpperThreshold: 100, LowerThreshold: 50,
			Origin: fsm.AgentOrigin("rs2"), Admin: fsm.Active, Health: fsm.HealthUp},
		{Service: "web", Addr: netip.MustParseAddr("198.51.100.1"), Port: 80, Weight: 3, Forwarding: fsm.TUN,
			Origin: fsm.OriginOperator, Admin: fsm.Draining, Health: fsm.HealthDown},
	}
	got := writeString(t, New([]fsm.Service{svc}, servers))
	want := "-A -t 192.0.2.10:80 -s wrr\n" +
		"-a -t 192.0.2.10:80 -r 198.51.100.1:80 -i -w 3 --tun-type ipip\n" +
		"-a -t 192.0.2.10:80 -r 198.51.100.2:80 -g -w 5\n"
	if got != want {
		t.Errorf("Write:\n%s\nwant:\n%s", got, want)
	}
}

func TestWriteServiceOptions(t *testing.T) {
	tests := []struct {
		name string
		svc  fsm.Service
		want string
	}{
		{"persistence per client prints no mask",
			fsm.Service{Protocol: fsm.TCP, VIP: netip.MustParseAddr("192.0.2.1"), Port: 443, Scheduler: "wlc", Persistence: 360},
			"-A -t 192.0.2.1:443 -s wlc -p 360\n"},
		{"IPv4 mask is dotted",
			fsm.Service{Protocol: fsm.TCP, VIP: netip.MustParseAddr("192.0.2.1"), Port: 443, Persistence: 60, PersistMask: 20},
			"-A -t 192.0.2.1:443 -s wlc -p 60 -M 255.255.240.0\n"},
		{"IPv6 mask is a prefix length",
			fsm.Service{Protocol: fsm.TCP, VIP: netip.MustParseAddr("2001:db8::1"), Port: 443, Persistence: 60, PersistMask: 56},
			"-A -t [2001:db8::1]:443 -s wlc -p 60 -M 56\n"},
		{"mask without persistence is not printed",
			fsm.Service{Protocol: fsm.TCP, VIP: netip.MustParseAddr("192.0.2.1"), Port: 443, PersistMask: 24},
			"-A -t 192.0.2.1:443 -s wlc\n"},
		{"options in ipvsadm's order",
			fsm.Service{Protocol: fsm.UDP, VIP: netip.MustParseAddr("192.0.2.1"), Port: 5060, Scheduler: "sh", Persistence: 30,
				PersistMask: 24, PersistEngine: "sip", OnePacket: true, SchedFlags: []string{fsm.FlagSHPort, fsm.FlagSHFallback}},
			"-A -u 192.0.2.1:5060 -s sh -p 30 -M 255.255.255.0 --pe sip -o -b sh-fallback,sh-port\n"},
		{"generic flag names under other schedulers",
			fsm.Service{Protocol: fsm.SCTP, VIP: netip.MustParseAddr("192.0.2.1"), Port: 3868, Scheduler: "rr", SchedFlags: []string{fsm.Flag3, fsm.Flag1}},
			"-A --sctp-service 192.0.2.1:3868 -s rr -b flag-1,flag-3\n"},
		// ipvsadm prints nothing for this bit under sh and leaves "-b " dangling; raftlvs
		// names it so the line can be read back.
		{"flag-3 under sh is named",
			fsm.Service{Protocol: fsm.TCP, VIP: netip.MustParseAddr("192.0.2.1"), Port: 80, Scheduler: "sh", SchedFlags: []string{fsm.Flag3}},
			"-A -t 192.0.2.1:80 -s sh -b flag-3\n"},
		{"IPv4-compatible IPv6 address as glibc prints it",
			fsm.Service{Protocol: fsm.TCP, VIP: netip.MustParseAddr("::192.0.2.1"), Port: 80},
			"-A -t [::192.0.2.1]:80 -s wlc\n"},
		{"IPv6 fwmark",
			fsm.Service{FWMark: 200, Family: fsm.IPv6, Scheduler: "rr", Persistence: 100, PersistMask: 64},
			"-A -f 200 -6 -s rr -p 100 -M 64\n"},
		{"fwmark of 2^31 and above is printed with %d",
			fsm.Service{FWMark: 1 << 31, Scheduler: "rr"},
			"-A -f -2147483648 -s rr\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules := New([]fsm.Service{tt.svc}, nil)
			got := writeString(t, rules)
			if got != tt.want {
				t.Fatalf("Write = %q, want %q", got, tt.want)
			}
			parsed, err := Parse(strings.NewReader(got))
			if err != nil {
				t.Fatalf("Parse of Write's output: %v", err)
			}
			if again := writeString(t, parsed); again != got {
				t.Errorf("Write after Parse = %q, want %q", again, got)
			}
		})
	}
}

func TestWriteRejectsWhatCannotBeReadBack(t *testing.T) {
	web := fsm.Service{Name: "web", Protocol: fsm.TCP, VIP: netip.MustParseAddr("192.0.2.1"), Port: 80}
	rs := fsm.RealServer{Service: "web", Addr: netip.MustParseAddr("198.51.100.1"), Port: 80, Weight: 1}
	tests := []struct {
		name  string
		rules *Rules
		kind  error
		want  string
	}{
		{"real server of no service", New(nil, []fsm.RealServer{rs}), fsm.ErrNotFound, "no service web"},
		{"two services of one name", New([]fsm.Service{web, web}, nil), fsm.ErrExists, "two services of that name"},
		{"invalid service", New([]fsm.Service{{Name: "x", Protocol: "icmp", VIP: web.VIP, Port: 1}}, nil), fsm.ErrInvalid, "protocol"},
		{"invalid real server", New([]fsm.Service{web}, []fsm.RealServer{{Service: "web", Addr: rs.Addr, Port: 80, Weight: -1}}), fsm.ErrInvalid, "weight"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			err := tt.rules.Write(&b)
			if !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Write error = %v, want %v saying %q", err, tt.kind, tt.want)
			}
			if b.Len() != 0 {
				t.Errorf("Write wrote %q before failing", b.String())
			}
		})
	}
}

func TestWriteReportsWriterError(t *testing.T) {
	rules := New([]fsm.Service{{Protocol: fsm.TCP, VIP: netip.MustParseAddr("192.0.2.1"), Port: 80}}, nil)
	boom := errors.New("disk full")
	if err := rules.Write(failingWriter{boom}); !errors.Is(err, boom) {
		t.Errorf("Write error = %v, want %v", err, boom)
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

func TestWriteEmptyRulesPrintsNothing(t *testing.T) {
	if got := writeString(t, New(nil, nil)); got != "" {
		t.Errorf("Write = %q, want nothing", got)
	}
}

// Write must not change the rule set it was given (it normalizes copies).
func TestWriteLeavesRulesUnchanged(t *testing.T) {
	svc := fsm.Service{Protocol: fsm.TCP, VIP: netip.MustParseAddr("192.0.2.1"), Port: 80, SchedFlags: []string{}}
	rules := New([]fsm.Service{svc}, []fsm.RealServer{{Service: "tcp-192.0.2.1-80", Addr: netip.MustParseAddr("198.51.100.1")}})
	writeString(t, rules)
	if s := rules.Services[0]; s.Name != "" || s.Scheduler != "" || s.SchedFlags == nil {
		t.Errorf("service changed by Write: %+v", s)
	}
	if rs := rules.RealServers[0]; rs.Port != 0 || rs.Origin != "" {
		t.Errorf("real server changed by Write: %+v", rs)
	}
}
