package healthd

import (
	"net/netip"
	"testing"

	"github.com/raftlvs/raftlvs/fsm"
)

func TestTargetsFollowTheEffectiveCheck(t *testing.T) {
	svc := func(name, vip string, check *fsm.HealthCheck) fsm.Command {
		return fsm.AddService{Service: fsm.Service{Name: name, Protocol: fsm.TCP, VIP: netip.MustParseAddr(vip), Port: 80, Family: fsm.IPv4, HealthCheck: check}}
	}
	rs := func(service, addr string, port uint16, check *fsm.HealthCheck) fsm.Command {
		return fsm.AddRealServer{RealServer: fsm.RealServer{Service: service, Addr: netip.MustParseAddr(addr), Port: port, Weight: 1, HealthCheck: check}}
	}
	tcp8080 := &fsm.HealthCheck{Type: fsm.CheckTCP, Port: 8080}
	http := &fsm.HealthCheck{Type: fsm.CheckHTTP, Path: "/health"}
	none := &fsm.HealthCheck{Type: fsm.CheckNone}
	s := prepared(t,
		svc("web", "192.0.2.10", tcp8080),
		rs("web", "198.51.100.2", 80, nil),    // the service's check, on its port override
		rs("web", "198.51.100.1", 80, http),   // its own check, on its own port
		rs("web", "198.51.100.3", 80, none),   // its own none: not checked
		svc("plain", "192.0.2.11", nil),       // no check
		rs("plain", "198.51.100.4", 81, nil),  // not checked
		rs("plain", "198.51.100.5", 82, http), // its own check
		svc("off", "192.0.2.12", none),        // none
		rs("off", "198.51.100.6", 80, nil),    // not checked
		fsm.SetHealth{Key: fsm.RSKey{Service: "web", Addr: netip.MustParseAddr("198.51.100.2"), Port: 80}, Health: fsm.HealthDown},
	)
	got := Targets(s)
	want := []struct {
		key    string
		to     string
		typ    fsm.CheckType
		health fsm.Health
	}{
		{"plain 198.51.100.5:82", "198.51.100.5:82", fsm.CheckHTTP, fsm.HealthUnknown},
		{"web 198.51.100.1:80", "198.51.100.1:80", fsm.CheckHTTP, fsm.HealthUnknown},
		{"web 198.51.100.2:80", "198.51.100.2:8080", fsm.CheckTCP, fsm.HealthDown},
	}
	if len(got) != len(want) {
		t.Fatalf("targets %+v, want %d of them", got, len(want))
	}
	for i, w := range want {
		g := got[i]
		key := g.Key.Service + " " + netip.AddrPortFrom(g.Key.Addr, g.Key.Port).String()
		if key != w.key || g.To.String() != w.to || g.Check.Type != w.typ || g.Health != w.health {
			t.Errorf("target %d = %s → %s %s %s, want %s → %s %s %s", i, key, g.To, g.Check.Type, g.Health, w.key, w.to, w.typ, w.health)
		}
	}
	got[0].Check.Path = "/changed"
	if rs, _ := s.RealServer(got[0].Key); rs.HealthCheck.Path != "/health" {
		t.Error("a target's spec points into the state")
	}
}
