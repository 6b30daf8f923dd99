package fsm

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"
)

func TestPrepareRejectsBadHealthChecks(t *testing.T) {
	tests := []struct {
		name  string
		hc    HealthCheck
		field string
	}{
		{"unknown type", HealthCheck{Type: "ping"}, "health_check.type"},
		{"interval too short", HealthCheck{Type: CheckTCP, IntervalMS: 50}, "health_check.interval_ms"},
		{"timeout beyond the interval", HealthCheck{Type: CheckTCP, IntervalMS: 1000, TimeoutMS: 1500}, "health_check.timeout_ms"},
		{"jitter over half the interval", HealthCheck{Type: CheckTCP, IntervalMS: 1000, JitterMS: 600}, "health_check.jitter_ms"},
		{"fall too large", HealthCheck{Type: CheckTCP, Fall: 1000}, "health_check.rise"},
		{"negative rise", HealthCheck{Type: CheckTCP, Rise: -1}, "health_check"},
		{"path on tcp", HealthCheck{Type: CheckTCP, Path: "/x"}, "health_check.path"},
		{"relative path", HealthCheck{Type: CheckHTTP, Path: "healthz"}, "health_check.path"},
		{"bad method", HealthCheck{Type: CheckHTTP, Method: "DELETE"}, "health_check.method"},
		{"bad status", HealthCheck{Type: CheckHTTP, Status: []string{"200", "300-2xx"}}, "health_check.status[1]"},
		{"status out of range", HealthCheck{Type: CheckHTTP, Status: []string{"99"}}, "health_check.status[0]"},
		{"bad regex", HealthCheck{Type: CheckHTTP, BodyRegex: "(("}, "health_check.body_regex"},
		{"bad digest", HealthCheck{Type: CheckHTTP, Digest: "abc"}, "health_check.digest"},
		{"sni on http", HealthCheck{Type: CheckHTTP, SNI: "www"}, "health_check.sni"},
		{"header injection", HealthCheck{Type: CheckHTTP, Host: "a\r\nX: y"}, "health_check.host"},
		{"odd payload", HealthCheck{Type: CheckUDP, PayloadHex: "abc"}, "health_check.payload_hex"},
		{"non-hex payload", HealthCheck{Type: CheckUDP, PayloadHex: "zz"}, "health_check.payload_hex"},
		{"bad dns type", HealthCheck{Type: CheckDNS, QueryType: "AXFR"}, "health_check.query_type"},
		{"bad rcode", HealthCheck{Type: CheckDNS, RCode: "OK"}, "health_check.rcode"},
		{"exec without command", HealthCheck{Type: CheckExec}, "health_check.command"},
		{"exec relative", HealthCheck{Type: CheckExec, Command: []string{"check.sh"}}, "health_check.command"},
		{"port on exec", HealthCheck{Type: CheckExec, Command: []string{"/bin/true"}, Port: 80}, "health_check.port"},
		{"multicast source", HealthCheck{Type: CheckTCP, Source: netip.MustParseAddr("224.0.0.1")}, "health_check.source"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewState()
			svc := webService()
			svc.HealthCheck = &tt.hc
			_, err := s.Prepare(AddService{Service: svc})
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field || !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want an invalid %s", err, tt.field)
			}
			// A real server's own check is held to the same rules.
			mustApply(t, s, AddService{Service: webService()})
			_, err = s.Prepare(AddRealServer{RealServer: RealServer{Service: "web", Addr: rs4, Weight: 1, HealthCheck: &tt.hc}})
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("real server: got %v, want an invalid %s", err, tt.field)
			}
		})
	}
}

func TestHealthCheckDefaultsAndLegacyRetries(t *testing.T) {
	hc := HealthCheck{Type: CheckHTTP}
	if hc.Interval() != DefaultCheckInterval || hc.Timeout() != DefaultCheckTimeout || hc.RiseCount() != 2 || hc.FallCount() != 3 || hc.Jitter() != 200*time.Millisecond {
		t.Fatalf("defaults: %v %v %d %d %v", hc.Interval(), hc.Timeout(), hc.RiseCount(), hc.FallCount(), hc.Jitter())
	}
	// An entry logged with the old "retries" reads it as fall; preparing it anew moves it there.
	legacy := HealthCheck{Type: CheckTCP, Retries: 5}
	if legacy.FallCount() != 5 {
		t.Fatalf("legacy retries read as fall %d", legacy.FallCount())
	}
	s := NewState()
	svc := webService()
	svc.HealthCheck = &legacy
	mustApply(t, s, AddService{Service: svc})
	got, _ := s.Service("web")
	if got.HealthCheck.Fall != 5 || got.HealthCheck.Retries != 0 || got.OnDown != DownRemove {
		t.Fatalf("prepared: %+v on_down %q", got.HealthCheck, got.OnDown)
	}
	if legacy.Retries != 5 {
		t.Fatal("preparing changed the caller's spec")
	}
}

func TestStartDownKeepsANewRealServerOutUntilChecked(t *testing.T) {
	s := NewState()
	svc := webService()
	svc.HealthCheck = &HealthCheck{Type: CheckTCP, StartDown: true}
	mustApply(t, s, AddService{Service: svc})
	mustApply(t, s, AddRealServer{RealServer: RealServer{Service: "web", Addr: rs4, Weight: 1}})
	rs, _ := s.RealServer(RSKey{Service: "web", Addr: rs4, Port: 80})
	if rs.Health != HealthDown || rs.InRotation() || rs.HealthReason == "" {
		t.Fatalf("new real server under start_down: %+v", rs)
	}
	// Its own check can say otherwise.
	mustApply(t, s, AddRealServer{RealServer: RealServer{Service: "web", Addr: netip.MustParseAddr("198.51.100.22"), Weight: 1,
		HealthCheck: &HealthCheck{Type: CheckTCP}}})
	rs, _ = s.RealServer(RSKey{Service: "web", Addr: netip.MustParseAddr("198.51.100.22"), Port: 80})
	if rs.Health != HealthUnknown {
		t.Fatalf("override without start_down: %+v", rs)
	}
}

func TestSetHealthsSkipsRemovedServersAndKeepsTheReason(t *testing.T) {
	s := NewState()
	mustApply(t, s, AddService{Service: webService()})
	mustApply(t, s, AddRealServer{RealServer: RealServer{Service: "web", Addr: rs4, Weight: 1}})
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.FixedZone("CET", 3600))
	gone := RSKey{Service: "web", Addr: netip.MustParseAddr("198.51.100.99"), Port: 80}
	key := RSKey{Service: "web", Addr: rs4, Port: 80}
	mustApply(t, s, SetHealths{Updates: []SetHealth{
		{Key: gone, Health: HealthDown, Reason: "connect: refused", Since: at},
		{Key: key, Health: HealthDown, Reason: "HTTP 503", Since: at},
	}})
	rs, _ := s.RealServer(key)
	if rs.Health != HealthDown || rs.HealthReason != "HTTP 503" || !rs.HealthSince.Equal(at) || rs.HealthSince.Location() != time.UTC {
		t.Fatalf("after SetHealths: %+v", rs)
	}
	// An operator's edit keeps the checks' verdict.
	mustApply(t, s, EditRealServer{RealServer: RealServer{Service: "web", Addr: rs4, Weight: 7}})
	rs, _ = s.RealServer(key)
	if rs.Health != HealthDown || rs.HealthReason != "HTTP 503" || rs.Weight != 7 {
		t.Fatalf("after an edit: %+v", rs)
	}
	if _, err := s.Prepare(SetHealths{Updates: []SetHealth{{Key: key, Health: "sick"}}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad value: %v", err)
	}
	// The entry round-trips through the log encoding.
	entry, err := Encode(SetHealths{Updates: []SetHealth{{Key: key, Health: HealthUp, Reason: "HTTP 200", Since: at.UTC()}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(entry); err != nil {
		t.Fatal(err)
	}
	if rs, _ = s.RealServer(key); rs.Health != HealthUp {
		t.Fatalf("after the encoded entry: %+v", rs)
	}
}

func TestQuorumIsLostAndRegainedWithHysteresis(t *testing.T) {
	s := NewState()
	svc := webService()
	svc.Quorum, svc.Hysteresis, svc.SorryServer = 5, 1, netip.MustParseAddrPort("198.51.100.99:80")
	svc.QuorumDown = false // an operator cannot set the verdict
	mustApply(t, s, AddService{Service: svc})
	quorumDown := func() bool { got, _ := s.Service("web"); return got.QuorumDown }
	if !quorumDown() {
		t.Fatal("a service with a quorum and no real servers holds its quorum")
	}
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}) }
	setWeight := func(i, w int) {
		t.Helper()
		mustApply(t, s, EditRealServer{RealServer: RealServer{Service: "web", Addr: addr(i), Weight: w}})
	}
	for i := 1; i <= 3; i++ {
		mustApply(t, s, AddRealServer{RealServer: RealServer{Service: "web", Addr: addr(i), Weight: 1}})
	}
	steps := []struct {
		what string
		do   func()
		down bool
	}{
		{"3 of 5: still lost", func() {}, true},
		{"5, not yet 6 (quorum+hysteresis)", func() { setWeight(3, 3) }, true},
		{"6: regained", func() { setWeight(3, 4) }, false},
		{"4 (quorum-hysteresis): still held", func() { setWeight(3, 2) }, false},
		{"3: lost", func() {
			mustApply(t, s, SetHealth{Key: RSKey{Service: "web", Addr: addr(3), Port: 80}, Health: HealthDown})
		}, true},
		{"an edit of the service keeps the verdict", func() {
			e := svc
			e.Scheduler = "rr"
			mustApply(t, s, EditService{Service: e})
		}, true},
	}
	for _, st := range steps {
		st.do()
		if got := quorumDown(); got != st.down {
			t.Fatalf("%s: quorum down %v, want %v", st.what, got, st.down)
		}
	}
	// A copy and a snapshot keep the verdict as it is; replaying their servers anew
	// (hysteresis) could say otherwise.
	if c := s.Clone(); !c.Equal(s) {
		t.Fatal("a clone differs")
	}
	var buf bytes.Buffer
	if err := s.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	r, err := ReadSnapshot(&buf)
	if err != nil || !r.Equal(s) {
		t.Fatalf("restored snapshot differs: %v", err)
	}
}
