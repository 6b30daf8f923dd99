package metrics

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/cluster"
	"github.com/raftlvs/raftlvs/director"
	"github.com/raftlvs/raftlvs/director/ipvs"
	"github.com/raftlvs/raftlvs/director/registrar"
	"github.com/raftlvs/raftlvs/director/syncd"
	"github.com/raftlvs/raftlvs/director/vip"
	"github.com/raftlvs/raftlvs/events"
	"github.com/raftlvs/raftlvs/fsm"
	"github.com/raftlvs/raftlvs/healthd"
)

// A director with every source, each with something to report.
type fakeRaft struct{}

func (fakeRaft) RaftStats() cluster.RaftStats {
	return cluster.RaftStats{State: "Follower", LeaderID: "d1", Term: 3, LastContact: time.Now().Add(-time.Second), Voters: 3,
		Peers: []cluster.PeerStats{{ID: "d2", Reachable: true, LastContact: time.Now(), LastLogIndex: 9}},
		Apply: cluster.Latencies{Bounds: []time.Duration{time.Millisecond}, Counts: []uint64{1, 0}, Count: 1, Sum: time.Millisecond}}
}

type fakeState struct{ st *fsm.State }

func (f fakeState) View(fn func(*fsm.State)) { fn(f.st) }

type fakePlane struct{}

var (
	fakeVIP = netip.MustParseAddr("192.0.2.10")
	fakeSvc = ipvs.Service{Family: ipvs.FamilyIPv4, Protocol: ipvs.ProtocolTCP, Address: fakeVIP, Port: 80}
	fakeRS  = netip.MustParseAddr("10.0.1.1")
)

func (fakePlane) Status(bool) director.Status {
	return director.Status{Interface: "eth0", VIPs: []director.HeldVIP{{Addr: fakeVIP, Interface: "eth0"}},
		SyncDaemons: []syncd.Daemon{{State: syncd.Backup}},
		Services: []director.ServiceCounters{{Name: "web", Service: fakeSvc, Counters: ipvs.Counters{Connections: 1},
			Destinations: []ipvs.DestinationStats{{Destination: ipvs.DestKey{Address: fakeRS, Port: 80}, ActiveConnections: 1}},
			Programmed:   []ipvs.Destination{{Address: fakeRS, Port: 80, Weight: 1}}}}}
}
func (fakePlane) ReconcilerStats() ipvs.Stats {
	return ipvs.Stats{Passes: 2, PassTime: time.Millisecond, LastErrorAt: time.Now()}
}
func (fakePlane) VIPStats() []vip.VIPStats {
	return []vip.VIPStats{{Addr: fakeVIP, Held: true, Since: time.Now(), GARPs: 5}}
}
func (fakePlane) VIPInterface() string { return "eth0" }

type fakeChecks struct{}

func (fakeChecks) Status() healthd.Status {
	return healthd.Status{Stats: healthd.Stats{Probes: 1, Runs: 4}, Probes: []healthd.ProbeStatus{{
		To: netip.AddrPortFrom(fakeRS, 80), Type: fsm.CheckTCP, LastRun: time.Now(), Up: true, Latency: time.Millisecond, Runs: 4}}}
}

// allNames are the series names a director with every source exports.
func allNames(t *testing.T) []string {
	t.Helper()
	st := fsm.NewState()
	for _, c := range []fsm.Command{
		fsm.AddService{Service: fsm.Service{Name: "web", Protocol: fsm.TCP, VIP: fakeVIP, Port: 80}},
		fsm.AddRealServer{RealServer: fsm.RealServer{Service: "web", Addr: fakeRS, Port: 80, Weight: 1}},
	} {
		p, err := st.Prepare(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Execute(p); err != nil {
			t.Fatal(err)
		}
	}
	reg := NewDirector(DirectorSources{
		Raft: fakeRaft{}, State: fakeState{st}, DataPlane: fakePlane{}, Checks: fakeChecks{},
		Agents:      func() []api.Agent { return []api.Agent{{ID: "a1", State: "alive"}} },
		Registrar:   &registrar.Counters{},
		Transitions: events.NewStateWatcher(events.NewLog("d1", 0)),
	})
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", Handler(reg))
	h := InstrumentAPI(reg.Registry(), routedMux{mux})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil)) // counted once it returns
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err) // also catches duplicate series and inconsistent labels
	}
	var names []string
	for _, f := range families {
		names = append(names, f.GetName())
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM:
			names = append(names, f.GetName()+"_bucket", f.GetName()+"_sum", f.GetName()+"_count")
		case dto.MetricType_SUMMARY:
			names = append(names, f.GetName()+"_sum", f.GetName()+"_count")
		}
	}
	return names
}

// routedMux is a mux that names its routes, as the API server does.
type routedMux struct{ *http.ServeMux }

func (m routedMux) Route(r *http.Request) string {
	_, pattern := m.Handler(r)
	return pattern
}

func TestTheGrafanaDashboardUsesOnlySeriesTheDirectorExports(t *testing.T) {
	names := allNames(t)
	data, err := os.ReadFile("../deploy/grafana/raftlvs.json")
	if err != nil {
		t.Fatal(err)
	}
	used := regexp.MustCompile(`raftlvs_[a-z0-9_]+`).FindAllString(string(data), -1)
	if len(used) < 20 {
		t.Fatalf("the dashboard uses %d raftlvs series: not the dashboard expected", len(used))
	}
	for _, n := range used {
		if !slices.Contains(names, n) {
			t.Errorf("the dashboard queries %s, which no collector exports", n)
		}
	}
}

func TestCountersEndInTotalAndNothingElseDoes(t *testing.T) {
	reg := NewDirector(DirectorSources{Raft: fakeRaft{}, State: fakeState{fsm.NewState()}, DataPlane: fakePlane{}, Checks: fakeChecks{}})
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		isCounter := f.GetType() == dto.MetricType_COUNTER
		total := regexp.MustCompile(`_total$`).MatchString(f.GetName())
		if isCounter != total {
			t.Errorf("%s: type %v", f.GetName(), f.GetType())
		}
	}
}
