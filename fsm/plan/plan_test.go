package plan

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/raftlvs/raftlvs/fsm"
)

func TestAgainstPrunesWhatTheTableLacksAndKeepsHealthAndDrains(t *testing.T) {
	st := fsm.NewState()
	for _, c := range []fsm.Command{
		fsm.AddService{Service: fsm.Service{Name: "web", Protocol: fsm.TCP, VIP: netip.MustParseAddr("192.0.2.10"), Port: 80}},
		fsm.AddRealServer{RealServer: fsm.RealServer{Service: "web", Addr: netip.MustParseAddr("10.0.0.1"), Weight: 1, Admin: fsm.Draining}},
		fsm.AddService{Service: fsm.Service{Name: "old", Protocol: fsm.UDP, VIP: netip.MustParseAddr("192.0.2.10"), Port: 53}},
		fsm.SetHealth{Key: fsm.RSKey{Service: "web", Addr: netip.MustParseAddr("10.0.0.1"), Port: 80}, Health: fsm.HealthDown, Reason: "HTTP 503"},
	} {
		p, err := st.Prepare(c)
		if err == nil {
			err = st.Execute(p)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	// The table: the web service under its derived name, its real server at weight 5.
	table := Table{
		Services:    []fsm.Service{{Protocol: fsm.TCP, VIP: netip.MustParseAddr("192.0.2.10"), Port: 80}},
		RealServers: []fsm.RealServer{{Service: "tcp-192.0.2.10-80", Addr: netip.MustParseAddr("10.0.0.1"), Weight: 5}},
	}
	c := Against(table, st.Services(), st.AllRealServers(), Options{Prune: true})
	var got []string
	for _, s := range c.Steps {
		got = append(got, s.String())
	}
	want := "remove service old (UDP 192.0.2.10:53)\nchange real server 10.0.0.1:80 of web: [weight]"
	if strings.Join(got, "\n") != want {
		t.Fatalf("steps\n%s\nwant\n%s", strings.Join(got, "\n"), want)
	}
	for _, cmd := range c.Commands() {
		p, err := st.Prepare(cmd)
		if err == nil {
			err = st.Execute(p)
		}
		if err != nil {
			t.Fatalf("%T: %v", cmd, err)
		}
	}
	rs, _ := st.RealServer(fsm.RSKey{Service: "web", Addr: netip.MustParseAddr("10.0.0.1"), Port: 80})
	if rs.Weight != 5 || rs.Admin != fsm.Draining || rs.Health != fsm.HealthDown || rs.HealthReason != "HTTP 503" {
		t.Fatalf("the real server after the plan: %+v", rs)
	}
	if again := Against(table, st.Services(), st.AllRealServers(), Options{Prune: true}); len(again.Steps) != 0 {
		t.Fatalf("a second plan has steps: %+v", again.Steps)
	}
}
