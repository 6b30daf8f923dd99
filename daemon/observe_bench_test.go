package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/cluster"
	"github.com/raftlvs/raftlvs/cluster/apiserver"
	"github.com/raftlvs/raftlvs/director"
	"github.com/raftlvs/raftlvs/director/ipvs"
	"github.com/raftlvs/raftlvs/director/vip"
	"github.com/raftlvs/raftlvs/events"
	"github.com/raftlvs/raftlvs/fsm"
	"github.com/raftlvs/raftlvs/metrics"
	"github.com/raftlvs/raftlvs/statuspage"
)

// What a scrape of /metrics and an update of the status page cost on a director that
// programmed 10,000 services × 10 real servers: the real data plane (reconciler, VIP
// owner) over the in-memory IPVS table, the real API server, collectors and timeline;
// only Raft is replaced by a replica that does not change.
//
//	go test -run '^$' -bench 'Scrape10k|PageUpdate10k' -benchmem ./daemon

// benchStore is a leader's replica that never changes, for the API.
type benchStore struct {
	mu    sync.RWMutex
	state *fsm.State
	ready chan struct{}
}

func (s *benchStore) Apply(context.Context, fsm.Command) error { return fmt.Errorf("read only") }
func (s *benchStore) View(fn func(*fsm.State)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	fn(s.state)
}
func (s *benchStore) Watch() (<-chan struct{}, func())                 { return make(chan struct{}), func() {} }
func (s *benchStore) Ready() <-chan struct{}                           { return s.ready }
func (s *benchStore) Join(context.Context, fsm.Director) error         { return nil }
func (s *benchStore) Remove(context.Context, string) error             { return nil }
func (s *benchStore) TransferLeadership(context.Context, string) error { return nil }
func (s *benchStore) IsLeader() bool                                   { return true }
func (s *benchStore) LeaderAPIAddr() (string, error)                   { return "", nil }
func (s *benchStore) Serving() bool                                    { return true }
func (s *benchStore) ReadIndex(context.Context) error                  { return nil }
func (s *benchStore) WaitVersion(context.Context, uint64) error        { return nil }
func (s *benchStore) DryRun(context.Context, fsm.Command) error        { return fmt.Errorf("read only") }
func (s *benchStore) Status() cluster.Status {
	return cluster.Status{NodeID: "d1", State: "Leader", LeaderID: "d1", Term: 3, Serving: true,
		Voters: []cluster.Voter{{ID: "d1", Suffrage: "Voter", Contact: cluster.ContactSelf}}}
}
func (s *benchStore) RaftStats() cluster.RaftStats {
	return cluster.RaftStats{State: "Leader", LeaderID: "d1", Term: 3, Voters: 3, Serving: true}
}

// benchState has services × realServers: TCP services on 10.x VIPs, NAT real servers.
func benchState(b testing.TB, services, realServers int) *fsm.State {
	b.Helper()
	st := fsm.NewState()
	for i := range services {
		svc := fsm.Service{Name: fmt.Sprintf("svc-%d", i), Protocol: fsm.TCP,
			VIP: netip.AddrFrom4([4]byte{10, 100, byte(i >> 8), byte(i)}), Port: 80}
		fsm.NormalizeService(&svc)
		if err := st.Execute(fsm.AddService{Service: svc}); err != nil {
			b.Fatal(err)
		}
		for j := range realServers {
			r := fsm.RealServer{Service: svc.Name, Addr: netip.AddrFrom4([4]byte{172, 16, byte(j), 1}), Port: 8080, Weight: 1}
			fsm.NormalizeRealServer(&r, &svc)
			if err := st.Execute(fsm.AddRealServer{RealServer: r}); err != nil {
				b.Fatal(err)
			}
		}
	}
	return st
}

// benchDirector is the API handler of a director that has programmed the state.
func benchDirector(b testing.TB, services, realServers int) http.Handler {
	b.Helper()
	store := &benchStore{state: benchState(b, services, realServers), ready: make(chan struct{})}
	close(store.ready)
	table := ipvs.NewFake()
	links := vip.NewFakeLinks()
	links.AddLink("eth0", net.HardwareAddr{2, 0, 0, 0, 0, 1}, netip.MustParsePrefix("10.0.0.1/24"))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	plane, err := director.New(director.Config{VIP: vip.Config{Interface: "eth0"}, StateDir: b.TempDir(), Logger: log},
		&director.Kernel{IPVS: table, Stats: table, Links: links, Announcer: vip.NewFakeAnnouncer(links)})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		plane.Run(ctx, store)
	}()
	b.Cleanup(func() { cancel(); <-done })
	for deadline := time.Now().Add(5 * time.Minute); plane.ReconcilerStats().Destinations < services*realServers; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("the table was not programmed")
		}
	}
	timeline := events.NewLog("d1", 0)
	for i := range 200 {
		timeline.Record(api.Event{Kind: api.EventHealth, Subject: fmt.Sprintf("svc-%d 172.16.0.1:8080", i), Message: "down"})
	}
	srv := apiserver.New(store, log)
	srv.DataPlane = func(counters bool) *api.DataPlane { return dataPlaneStatus(plane.Status(counters)) }
	reg := metrics.NewDirector(metrics.DirectorSources{Raft: store, State: store, DataPlane: plane})
	srv.Handle("GET /metrics", metrics.Handler(reg))
	srv.Handle("GET /v1/events", timeline.Handler())
	statuspage.Mount(srv)
	return metrics.InstrumentAPI(reg.Registry(), srv)
}

// countingWriter is a client that reads the answer and keeps nothing but its size, as a
// socket would: the benchmark measures the server, not a buffer of the whole answer.
type countingWriter struct {
	header http.Header
	code   int
	n      int
}

func (w *countingWriter) Header() http.Header         { return w.header }
func (w *countingWriter) WriteHeader(code int)        { w.code = code }
func (w *countingWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

func get(b testing.TB, h http.Handler, url string) int {
	b.Helper()
	w := &countingWriter{header: http.Header{}, code: http.StatusOK}
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, url, nil))
	if w.code != http.StatusOK {
		b.Fatalf("GET %s: %d", url, w.code)
	}
	return w.n
}

func BenchmarkScrape10kServices(b *testing.B) {
	h := benchDirector(b, 10_000, 10)
	var size int
	for b.Loop() {
		size = get(b, h, "/metrics")
	}
	b.ReportMetric(float64(size)/1e6, "MB/scrape")
}

// BenchmarkPageUpdate10kServices is what the page asks for every two seconds (the status
// with the IPVS counters) and its long poll of the timeline, answered at once.
func BenchmarkPageUpdate10kServices(b *testing.B) {
	h := benchDirector(b, 10_000, 10)
	var size int
	for b.Loop() {
		size = get(b, h, "/v1/status?counters=true") + get(b, h, "/v1/events?after=0&limit=200")
	}
	b.ReportMetric(float64(size)/1e6, "MB/update")
}

// The benchmarks' assembly, on a small table: what they time is what the page and
// Prometheus read.
func TestBenchDirectorAnswersWhatThePageAndPrometheusRead(t *testing.T) {
	h := benchDirector(t, 20, 3)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	want := `raftlvs_ipvs_backend_weight{local_address="10.100.0.19",local_mark="",local_port="80",proto="TCP",remote_address="172.16.2.1",remote_port="8080",service="svc-19"} 1`
	if !strings.Contains(rec.Body.String(), want) {
		t.Fatalf("the scrape lacks svc-19's third real server (%s)", want)
	}
	var st api.StatusResponse
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/status?counters=true", nil))
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil || len(st.Services) != 20 || st.DataPlane == nil || len(st.DataPlane.Services) != 20 {
		t.Fatalf("status: %v, %d services", err, len(st.Services))
	}
	if n := get(t, h, "/"); n == 0 {
		t.Fatal("GET / is empty")
	}
}
