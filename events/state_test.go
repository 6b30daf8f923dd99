package events

import (
	"net/netip"
	"testing"

	"github.com/raftlvs/raftlvs/fsm"
)

func mustExec(t *testing.T, st *fsm.State, cmds ...fsm.Command) {
	t.Helper()
	for _, c := range cmds {
		p, err := st.Prepare(c)
		if err != nil {
			t.Fatalf("prepare %T: %v", c, err)
		}
		if err := st.Execute(p); err != nil {
			t.Fatalf("execute %T: %v", c, err)
		}
	}
}

func TestStateWatcherRecordsHealthTransitionsAndDrainsButNotTheFirstLookNorNewServers(t *testing.T) {
	st := fsm.NewState()
	vip := netip.MustParseAddr("192.0.2.10")
	rs := func(n byte) fsm.RealServer {
		return fsm.RealServer{Service: "web", Addr: netip.AddrFrom4([4]byte{10, 0, 0, n}), Port: 80, Weight: 1}
	}
	key := func(n byte) fsm.RSKey { r := rs(n); return r.Key() }
	mustExec(t, st, fsm.AddService{Service: fsm.Service{Name: "web", Protocol: fsm.TCP, VIP: vip, Port: 80}},
		fsm.AddRealServer{RealServer: rs(1)}, fsm.AddRealServer{RealServer: rs(2)},
		fsm.SetHealth{Key: key(1), Health: fsm.HealthDown, Reason: "old news"})
	log := NewLog("d1", 0)
	w := NewStateWatcher(log)
	w.Observe(st) // takes note only
	drained := rs(2)
	drained.Admin = fsm.Draining
	mustExec(t, st, fsm.SetHealth{Key: key(1), Health: fsm.HealthUp, Reason: "HTTP 200"},
		fsm.AddRealServer{RealServer: rs(3)}, fsm.EditRealServer{RealServer: drained})
	w.Observe(st)
	mustExec(t, st, fsm.SetHealth{Key: key(3), Health: fsm.HealthDown, Reason: "connect: refused"},
		fsm.RemoveRealServer{Key: key(2)})
	w.Observe(st)
	w.Observe(st) // nothing changed

	var got []string
	for _, e := range log.Since(0, 0).Events {
		got = append(got, e.Kind+"|"+e.Subject+"|"+e.From+">"+e.To+"|"+e.Message)
	}
	want := []string{
		"health|web 10.0.0.1:80|down>up|web 10.0.0.1:80 is up: HTTP 200",
		"drain|web 10.0.0.2:80|active>draining|web 10.0.0.2:80 draining: weight 0 in IPVS, its connections finish",
		"drain|web 10.0.0.2:80|draining>removed|web 10.0.0.2:80 removed after draining",
		"health|web 10.0.0.3:80|unknown>down|web 10.0.0.3:80 is down: connect: refused",
	}
	if len(got) != len(want) {
		t.Fatalf("events:\n%q\nwant\n%q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d: %q, want %q", i, got[i], want[i])
		}
	}
	if c, want := w.Counts(), (Transitions{HealthUp: 1, HealthDown: 1, Drains: 1, DrainedRemovals: 1}); c != want {
		t.Errorf("counts %+v, want %+v", c, want)
	}
}

// A state the journal cannot relate to the last one (a snapshot restored) is compared
// whole: its transitions are told, and a service gone with a draining server ends it.
func TestStateWatcherComparesARestoredStateWhole(t *testing.T) {
	st := fsm.NewState()
	vip := netip.MustParseAddr("192.0.2.10")
	rs := fsm.RealServer{Service: "web", Addr: netip.MustParseAddr("10.0.0.1"), Port: 80, Weight: 1}
	drained := fsm.RealServer{Service: "api", Addr: netip.MustParseAddr("10.0.0.2"), Port: 80, Weight: 1}
	mustExec(t, st, fsm.AddService{Service: fsm.Service{Name: "web", Protocol: fsm.TCP, VIP: vip, Port: 80}},
		fsm.AddService{Service: fsm.Service{Name: "api", Protocol: fsm.TCP, VIP: vip, Port: 81}},
		fsm.AddRealServer{RealServer: rs}, fsm.AddRealServer{RealServer: drained})
	drained.Admin = fsm.Draining
	mustExec(t, st, fsm.EditRealServer{RealServer: drained})
	log := NewLog("d1", 0)
	w := NewStateWatcher(log)
	w.Observe(st)
	restored := st.Clone()
	mustExec(t, restored, fsm.SetHealth{Key: rs.Key(), Health: fsm.HealthDown, Reason: "HTTP 503"},
		fsm.RemoveService{Name: "api"})
	w.Observe(restored)
	var got []string
	for _, e := range log.Since(0, 0).Events {
		got = append(got, e.Kind+"|"+e.Subject+"|"+e.To)
	}
	want := []string{"drain|api 10.0.0.2:80|removed", "health|web 10.0.0.1:80|down"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("events %q, want %q", got, want)
	}
}
