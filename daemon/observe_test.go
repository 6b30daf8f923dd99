//go:build linux

package daemon

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/director/ipvs"
	"github.com/raftlvs/raftlvs/fsm"
)

// The observed cluster: three directors in this process (as in agents_netns_test.go,
// without agents), one service with three real servers checked over HTTP: rs1 up, rs2
// drained (and up), rs3 down.
var (
	webVIP = netip.MustParseAddr("192.0.2.10")
	rs1    = netip.MustParseAddr("10.0.1.1")
	rs2    = netip.MustParseAddr("10.0.1.2")
	rs3    = netip.MustParseAddr("10.0.1.3")
)

type testCluster struct {
	directors []*testDirector
	client    *api.Client // every director's API
	backends  *backends
}

// backends are web's real servers as the health checks see them: the directors' checks
// dial 10.0.1.x:80 and reach an HTTP server on loopback that answers as the test says.
type backends struct {
	code map[netip.Addr]*atomic.Int32
	addr map[string]string // the real server's address:port → its loopback listener
}

func newBackends(t *testing.T, rss ...netip.Addr) *backends {
	b := &backends{code: map[netip.Addr]*atomic.Int32{}, addr: map[string]string{}}
	for _, rs := range rss {
		code := new(atomic.Int32)
		code.Store(http.StatusOK)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(int(code.Load())) }))
		t.Cleanup(srv.Close)
		b.code[rs] = code
		b.addr[netip.AddrPortFrom(rs, 80).String()] = srv.Listener.Addr().String()
	}
	return b
}

func (b *backends) dial(ctx context.Context, d *net.Dialer, network, address string) (net.Conn, error) {
	to, ok := b.addr[address]
	if !ok {
		return nil, fmt.Errorf("dial %s: not one of the test's backends", address)
	}
	return d.DialContext(ctx, network, to)
}

func startCluster(t *testing.T) *testCluster {
	t.Helper()
	key := []byte("0123456789abcdef0123456789abcdef")
	b := newBackends(t, rs1, rs2, rs3)
	checkVia := func(o *Options) { o.HealthDial = b.dial }
	c := &testCluster{directors: startThree(t, key, func(string) []func(*Options) { return []func(*Options){checkVia} }), backends: b}
	var addrs []string
	for _, d := range c.directors {
		addrs = append(addrs, d.d.APIAddr())
	}
	c.client = api.NewClient(addrs...)
	return c
}

func (c *testCluster) leader(t *testing.T) *testDirector {
	t.Helper()
	var leader *testDirector
	waitUntil(t, "a leader", 20*time.Second, func() bool {
		for _, d := range c.directors {
			if d.node().IsLeader() {
				leader = d
				return true
			}
		}
		return false
	})
	return leader
}

func (c *testCluster) follower(t *testing.T) *testDirector {
	t.Helper()
	for _, d := range c.directors {
		if !d.node().IsLeader() {
			return d
		}
	}
	t.Fatal("no follower")
	return nil
}

// seed adds web with rs1 (w10, up), rs2 (w20, drained after it was added) and rs3
// (w30, its backend answers 503: down), through the API, and waits for the checks'
// verdicts.
func (c *testCluster) seed(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	check, err := fsm.ParseHealthCheck("http:/,interval=500ms,timeout=400ms,rise=1,fall=1")
	if err != nil {
		t.Fatal(err)
	}
	c.serve(t, rs3, http.StatusServiceUnavailable)
	if _, err := c.client.AddService(ctx, fsm.Service{Name: "web", Protocol: fsm.TCP, VIP: webVIP, Port: 80, Scheduler: "wrr", Forwarding: fsm.NAT, HealthCheck: check}); err != nil {
		t.Fatalf("add service: %v", err)
	}
	for i, a := range []netip.Addr{rs1, rs2, rs3} {
		w := 10 * (i + 1)
		if _, err := c.client.AddRealServer(ctx, "web", api.RealServerRequest{Addr: a, Port: 80, Weight: &w}); err != nil {
			t.Fatalf("add real server %s: %v", a, err)
		}
	}
	c.setWeightAndAdmin(t, rs2, 20, fsm.Draining)
	c.waitHealth(t, rs1, fsm.HealthUp)
	c.waitHealth(t, rs2, fsm.HealthUp)
	c.waitHealth(t, rs3, fsm.HealthDown)
}

func (c *testCluster) setWeightAndAdmin(t *testing.T, addr netip.Addr, weight int, admin fsm.AdminState) {
	t.Helper()
	ctx := context.Background()
	svc, err := c.client.Service(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	for _, rs := range svc.RealServers {
		if rs.Addr == addr {
			req := api.RealServerRequestFrom(rs)
			req.Weight, req.Admin = &weight, admin
			if _, err := c.client.EditRealServer(ctx, "web", addr, 80, req); err != nil {
				t.Fatalf("edit %s: %v", addr, err)
			}
			return
		}
	}
	t.Fatalf("no real server %s", addr)
}

// serve makes addr's backend answer the checks with code.
func (c *testCluster) serve(t *testing.T, addr netip.Addr, code int) {
	t.Helper()
	c.backends.code[addr].Store(int32(code))
}

// waitHealth waits for the cluster's verdict on addr to be h.
func (c *testCluster) waitHealth(t *testing.T, addr netip.Addr, h fsm.Health) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("%s %s", addr, h), 20*time.Second, func() bool {
		var got fsm.Health
		c.leader(t).node().View(func(st *fsm.State) {
			if rs, ok := st.RealServer(fsm.RSKey{Service: "web", Addr: addr, Port: 80}); ok {
				got = rs.Health
			}
		})
		return got == h
	})
}

// programmed waits until d's kernel holds web with exactly the weights given (an absent
// real server has none).
func programmed(t *testing.T, d *testDirector, weights map[netip.Addr]int) ipvs.Service {
	t.Helper()
	var web ipvs.Service
	waitUntil(t, d.id+" programmed web", 20*time.Second, func() bool {
		svcs, _ := d.table.Services()
		for _, s := range svcs {
			if s.Address != webVIP {
				continue
			}
			dests, _ := d.table.Destinations(s)
			got := map[netip.Addr]int{}
			for _, ds := range dests {
				got[ds.Address] = ds.Weight
			}
			if fmt.Sprint(got) == fmt.Sprint(weights) {
				web = s
				return true
			}
		}
		return false
	})
	return web
}

func scrape(t *testing.T, d *testDirector) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + d.d.APIAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics of %s: %v", d.id, err)
	}
	return families
}

// sample finds the one series of name whose labels include want, and its value.
func sample(families map[string]*dto.MetricFamily, name string, want map[string]string) (float64, dto.MetricType, bool) {
	f := families[name]
	if f == nil {
		return 0, 0, false
	}
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			if labels[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			return m.Counter.GetValue(), f.GetType(), true
		case dto.MetricType_GAUGE:
			return m.Gauge.GetValue(), f.GetType(), true
		case dto.MetricType_HISTOGRAM:
			return float64(m.Histogram.GetSampleCount()), f.GetType(), true
		case dto.MetricType_SUMMARY:
			return float64(m.Summary.GetSampleCount()), f.GetType(), true
		}
	}
	return 0, 0, false
}

func backend(addr netip.Addr) map[string]string {
	return map[string]string{"service": "web", "local_address": webVIP.String(), "local_port": "80", "proto": "TCP",
		"local_mark": "", "remote_address": addr.String(), "remote_port": "80"}
}

func with(m map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func TestMetricsOfARunningClusterMatchItsState(t *testing.T) {
	c := startCluster(t)
	c.seed(t)
	leader := c.leader(t)
	web := programmed(t, leader, map[netip.Addr]int{rs1: 10, rs2: 0}) // rs3 is down: out of IPVS
	// Counters beyond 32 bits, as the kernel's 64-bit stats have them.
	if err := leader.table.SetStats(web.Key(), ipvs.Counters{Connections: 12, PacketsIn: 1 << 33, BytesIn: 5 << 32, PacketsOut: 40, BytesOut: 4000},
		&ipvs.DestinationStats{Destination: ipvs.DestKey{Address: rs1, Port: 80}, ActiveConnections: 3, InactiveConnections: 2,
			Counters: ipvs.Counters{Connections: 9, PacketsIn: 1 << 33, BytesIn: 5 << 32}}); err != nil {
		t.Fatal(err)
	}
	var families map[string]*dto.MetricFamily
	waitUntil(t, "the leader reports the VIP held and both transitions", 20*time.Second, func() bool {
		families = scrape(t, leader)
		held, _, _ := sample(families, "raftlvs_vip_held", map[string]string{"vip": webVIP.String(), "interface": "eth0"})
		down, _, _ := sample(families, "raftlvs_health_transitions_total", map[string]string{"to": "down"})
		return held == 1 && down == 1
	})

	type want struct {
		name   string
		labels map[string]string
		typ    dto.MetricType
		check  func(float64) bool
		what   string
	}
	eq := func(v float64) func(float64) bool { return func(x float64) bool { return x == v } }
	atLeast := func(v float64) func(float64) bool { return func(x float64) bool { return x >= v } }
	G, C, H := dto.MetricType_GAUGE, dto.MetricType_COUNTER, dto.MetricType_HISTOGRAM
	for _, w := range []want{
		{"raftlvs_ipvs_backend_connections_active", backend(rs1), G, eq(3), "3"},
		{"raftlvs_ipvs_backend_connections_inactive", backend(rs1), G, eq(2), "2"},
		{"raftlvs_ipvs_backend_weight", backend(rs1), G, eq(10), "10"},
		{"raftlvs_ipvs_backend_weight", backend(rs2), G, eq(0), "0 (draining)"},
		{"raftlvs_ipvs_backend_connections_total", backend(rs1), C, eq(9), "9"},
		{"raftlvs_ipvs_backend_incoming_packets_total", backend(rs1), C, eq(1 << 33), "2^33"},
		{"raftlvs_ipvs_backend_incoming_bytes_total", backend(rs1), C, eq(5 << 32), "5·2^32"},
		{"raftlvs_ipvs_service_connections_total", map[string]string{"service": "web", "local_address": webVIP.String(), "local_port": "80", "proto": "TCP", "local_mark": ""}, C, eq(12), "12"},
		{"raftlvs_ipvs_service_incoming_packets_total", map[string]string{"service": "web"}, C, eq(1 << 33), "2^33"},
		{"raftlvs_ipvs_service_outgoing_bytes_total", map[string]string{"service": "web"}, C, eq(4000), "4000"},
		{"raftlvs_real_server_state", with(backend(rs1), "health", "up", "admin", "active"), G, eq(1), "1"},
		{"raftlvs_real_server_state", with(backend(rs2), "health", "up", "admin", "draining"), G, eq(1), "1"},
		{"raftlvs_real_server_state", with(backend(rs3), "health", "down", "admin", "active"), G, eq(1), "1"},
		{"raftlvs_raft_leader", nil, G, eq(1), "1"},
		{"raftlvs_raft_state", map[string]string{"state": "leader"}, G, eq(1), "1"},
		{"raftlvs_raft_state", map[string]string{"state": "follower"}, G, eq(0), "0"},
		{"raftlvs_raft_term", nil, G, atLeast(1), "≥ 1"},
		{"raftlvs_raft_voters", nil, G, eq(3), "3"},
		{"raftlvs_raft_voters_unreachable", nil, G, eq(0), "0"},
		{"raftlvs_raft_last_contact_seconds", nil, G, eq(0), "0 on the leader"},
		{"raftlvs_raft_leader_changes_total", nil, C, atLeast(1), "≥ 1"},
		{"raftlvs_raft_apply_duration_seconds", nil, H, atLeast(1), "≥ 1 write timed"},
		{"raftlvs_vip_held", map[string]string{"vip": webVIP.String()}, G, eq(1), "1"},
		{"raftlvs_vip_announcements_total", map[string]string{"vip": webVIP.String(), "kind": "garp"}, C, atLeast(1), "≥ 1"},
		{"raftlvs_vip_errors_total", map[string]string{"vip": webVIP.String(), "op": "announce"}, C, eq(0), "0"},
		{"raftlvs_sync_daemon_running", map[string]string{"state": "master"}, G, eq(0), "0 (no sync daemon in this test)"},
		{"raftlvs_reconciler_services", nil, G, eq(1), "1"},
		{"raftlvs_reconciler_real_servers", nil, G, eq(2), "2"},
		{"raftlvs_reconciler_passes_total", nil, C, atLeast(1), "≥ 1"},
		{"raftlvs_reconciler_operations_total", map[string]string{"op": "service_add"}, C, atLeast(1), "≥ 1"},
		{"raftlvs_reconciler_drift_repairs_total", nil, C, eq(0), "0"},
		{"raftlvs_health_transitions_total", map[string]string{"to": "down"}, C, eq(1), "1"},
		{"raftlvs_health_transitions_total", map[string]string{"to": "up"}, C, eq(2), "2 (rs1, rs2)"},
		{"raftlvs_admin_transitions_total", map[string]string{"to": "draining"}, C, eq(1), "1"},
		{"raftlvs_agents", map[string]string{"state": "alive"}, G, eq(0), "0"},
		{"raftlvs_build_info", map[string]string{"role": "director"}, G, eq(1), "1"},
		{"raftlvs_healthcheck_probes", nil, G, eq(3), "3"},
		{"raftlvs_healthcheck_up", map[string]string{"type": "http", "address": rs3.String(), "port": "80"}, G, eq(0), "0"},
		{"raftlvs_healthcheck_up", map[string]string{"type": "http", "address": rs1.String(), "port": "80"}, G, eq(1), "1"},
	} {
		v, typ, ok := sample(families, w.name, w.labels)
		switch {
		case !ok:
			t.Errorf("%s%v: missing", w.name, w.labels)
		case typ != w.typ:
			t.Errorf("%s: type %v, want %v", w.name, typ, w.typ)
		case !w.check(v):
			t.Errorf("%s%v = %v, want %s", w.name, w.labels, v, w.what)
		}
	}
	for _, d := range c.directors {
		if d == leader {
			continue
		}
		if v, _, ok := sample(families, "raftlvs_raft_peer_reachable", map[string]string{"peer": d.id}); !ok || v != 1 {
			t.Errorf("the leader's view of %s: reachable %v (present %v)", d.id, v, ok)
		}
		if v, _, ok := sample(families, "raftlvs_raft_peer_lag_entries", map[string]string{"peer": d.id}); !ok || v < 0 || v > 100 {
			t.Errorf("the leader's view of %s: lag %v (present %v)", d.id, v, ok)
		}
	}
	if _, _, ok := sample(families, "raftlvs_ipvs_backend_connections_active", backend(rs3)); ok {
		t.Error("rs3 is down and out of the kernel, yet has IPVS series")
	}
	if got := len(families["raftlvs_real_server_state"].GetMetric()); got != 3 {
		t.Errorf("%d raftlvs_real_server_state series, want one per real server (3)", got)
	}
	for name := range families {
		if strings.Contains(name, "raft_replication_") || strings.HasPrefix(name, "raft_") {
			t.Errorf("go-metrics series %s leaked into /metrics", name)
		}
	}

	// A follower: no VIP, its last contact, the same committed state.
	f := c.follower(t)
	programmed(t, f, map[netip.Addr]int{rs1: 10, rs2: 0})
	ff := scrape(t, f)
	for _, w := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"raftlvs_raft_leader", nil, 0},
		{"raftlvs_vip_held", map[string]string{"vip": webVIP.String()}, 0},
		{"raftlvs_real_server_state", with(backend(rs3), "health", "down", "admin", "active"), 1},
		{"raftlvs_ipvs_backend_weight", backend(rs2), 0},
	} {
		if v, _, ok := sample(ff, w.name, w.labels); !ok || v != w.want {
			t.Errorf("follower %s: %s%v = %v (present %v), want %v", f.id, w.name, w.labels, v, ok, w.want)
		}
	}
	if v, _, ok := sample(ff, "raftlvs_raft_last_contact_seconds", nil); !ok || v < 0 || v > 60 {
		t.Errorf("follower last contact: %v (present %v)", v, ok)
	}

	// The API counts its own requests, /metrics included.
	again := scrape(t, leader)
	if v, _, ok := sample(again, "raftlvs_api_requests_total", map[string]string{"endpoint": "GET /metrics", "code": "200"}); !ok || v < 1 {
		t.Errorf("api requests of GET /metrics: %v (present %v)", v, ok)
	}
}

func TestEventsEndpointTellsLeaderVIPHealthAndDrainChanges(t *testing.T) {
	c := startCluster(t)
	c.seed(t)
	leader := c.leader(t)
	client := api.NewClient(leader.d.APIAddr())
	want := []string{
		api.EventLeader + " " + leader.id,
		api.EventVIP + " " + webVIP.String(),
		api.EventDrain + " web " + rs2.String() + ":80",
		api.EventHealth + " web " + rs1.String() + ":80",
		api.EventHealth + " web " + rs3.String() + ":80",
	}
	var got []string
	var list *api.EventList
	waitUntil(t, "the leader's timeline", 20*time.Second, func() bool {
		var err error
		if list, err = client.Events(context.Background(), 0, 0, 0); err != nil {
			t.Fatal(err)
		}
		got = got[:0]
		for _, e := range list.Events {
			got = append(got, e.Kind+" "+e.Subject)
		}
		return !slices.ContainsFunc(want, func(w string) bool { return !slices.Contains(got, w) })
	})
	if list.Director != leader.id || list.Last == 0 {
		t.Errorf("list of %s, last %d", list.Director, list.Last)
	}
	// A long poll returns with the next event: a drift repaired on this director.
	next := make(chan *api.EventList, 1)
	go func() {
		l, err := client.Events(context.Background(), list.Last, 30*time.Second, 0)
		if err != nil {
			t.Error(err)
		}
		next <- l
	}()
	web := programmed(t, leader, map[netip.Addr]int{rs1: 10, rs2: 0})
	if err := leader.table.DeleteService(web); err != nil { // ipvsadm -D
		t.Fatal(err)
	}
	select {
	case l := <-next:
		if l == nil || len(l.Events) == 0 || l.Events[0].Kind != api.EventDrift || l.Events[0].Subject != "web" {
			t.Fatalf("long poll answered %+v, want the drift of web", l)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("the long poll did not return")
	}

	// A director that stops ends the long polls it holds, rather than waiting them out.
	held := make(chan error, 1)
	go func() {
		_, err := api.NewClient(leader.d.APIAddr()).Events(context.Background(), ^uint64(0)>>1, api.MaxEventsWait, 0)
		held <- err
	}()
	time.Sleep(200 * time.Millisecond) // let the poll reach the director
	stopped := make(chan struct{})
	go func() { leader.stop(); close(stopped) }()
	select {
	case <-held:
	case <-time.After(api.MaxEventsWait / 2):
		t.Fatal("a stopping director held its long poll")
	}
	<-stopped
}
