//go:build linux

package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/fsm"
)

// This test runs the health checks' whole path on the host: three directors in this
// process (real Raft, the API, the leader's aggregation; in-memory IPVS tables), each
// probing from a network namespace of its own, and two real HTTP servers, each in its
// namespace, all on one bridge in a switch namespace. Nothing touches the host's own
// namespace but loopback (Raft, gossip and the API).

// healthLab is the switch, the directors' and the real servers' namespaces.
type healthLab struct {
	prefix string
	ns     map[string]string // host → namespace name
	addr   map[string]netip.Addr
}

func newHealthLab(t testing.TB, hosts ...string) *healthLab {
	t.Helper()
	l := &healthLab{prefix: fmt.Sprintf("rlhc%d", os.Getpid()), ns: map[string]string{}, addr: map[string]netip.Addr{}}
	sw := l.prefix + "-sw"
	runIn(t, "ip", "netns", "add", sw)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", sw).Run() })
	runIn(t, "ip", "-n", sw, "link", "add", "br0", "type", "bridge")
	runIn(t, "ip", "-n", sw, "link", "set", "br0", "up")
	for i, h := range hosts {
		name := l.prefix + "-" + h
		a := netip.AddrFrom4([4]byte{10, 98, 0, byte(10 + i)})
		l.ns[h], l.addr[h] = name, a
		runIn(t, "ip", "netns", "add", name)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
		port := "p" + h
		runIn(t, "ip", "-n", sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", name)
		runIn(t, "ip", "-n", sw, "link", "set", port, "master", "br0", "up")
		runIn(t, "ip", "-n", name, "addr", "add", a.String()+"/24", "dev", "eth0")
		runIn(t, "ip", "-n", name, "link", "set", "eth0", "up")
		runIn(t, "ip", "-n", name, "link", "set", "lo", "up")
	}
	return l
}

// inNetns runs fn on a thread switched into the namespace; the thread is never unlocked,
// so it dies with its goroutine and no other goroutine ever runs in that namespace.
func inNetns[T any](name string, fn func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		var zero T
		h, err := netns.GetFromName(name)
		if err != nil {
			done <- result{zero, err}
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			done <- result{zero, err}
			return
		}
		v, err := fn()
		done <- result{v, err}
	}()
	r := <-done
	return r.v, r.err
}

// dialFrom opens health-check connections from a namespace: a socket belongs to the
// namespace it was created in, whatever thread uses it afterwards.
func dialFrom(name string) func(context.Context, *net.Dialer, string, string) (net.Conn, error) {
	return func(ctx context.Context, d *net.Dialer, network, address string) (net.Conn, error) {
		return inNetns(name, func() (net.Conn, error) { return d.DialContext(ctx, network, address) })
	}
}

// webServer is an HTTP server on port 80 of a host's namespace, that can be stopped and
// started again.
type webServer struct {
	t   testing.TB
	ns  string
	srv *http.Server
}

func (w *webServer) start() {
	w.t.Helper()
	ln, err := inNetns(w.ns, func() (net.Listener, error) { return net.Listen("tcp", ":80") })
	if err != nil {
		w.t.Fatal(err)
	}
	w.srv = &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) { rw.Write([]byte("ok\n")) })}
	go w.srv.Serve(ln)
}

func (w *webServer) stop() { w.srv.Close() }

// healthCluster is three directors, each probing from its own namespace, and two HTTP
// real servers in theirs, serving one service on 192.0.2.80:80 checked with check.
type healthCluster struct {
	lab       *healthLab
	webs      map[string]*webServer
	directors []*testDirector
	client    *api.Client
	vip       netip.Addr
}

func newHealthCluster(t testing.TB, check *fsm.HealthCheck) *healthCluster {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
	hc := &healthCluster{lab: newHealthLab(t, "d1", "d2", "d3", "rs1", "rs2"), webs: map[string]*webServer{}, vip: netip.MustParseAddr("192.0.2.80")}
	lab := hc.lab
	for _, rs := range []string{"rs1", "rs2"} {
		hc.webs[rs] = &webServer{t: t, ns: lab.ns[rs]}
		hc.webs[rs].start()
		t.Cleanup(hc.webs[rs].stop)
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	probeFrom := func(id string) func(*Options) {
		return func(o *Options) { o.HealthDial = dialFrom(lab.ns[id]) }
	}
	hc.directors = startThree(t, key, func(id string) []func(*Options) { return []func(*Options){probeFrom(id)} })
	d1, d2, d3 := hc.directors[0], hc.directors[1], hc.directors[2]
	hc.client = api.NewClient(d1.d.APIAddr(), d2.d.APIAddr(), d3.d.APIAddr())
	ctx := context.Background()
	if _, err := hc.client.AddService(ctx, fsm.Service{Name: "web", Protocol: fsm.TCP, VIP: hc.vip, Port: 80, Scheduler: "wrr", HealthCheck: check}); err != nil {
		t.Fatalf("add service: %v", err)
	}
	for _, rs := range []string{"rs1", "rs2"} {
		if _, err := hc.client.AddRealServer(ctx, "web", api.RealServerRequest{Addr: lab.addr[rs]}); err != nil {
			t.Fatalf("add %s: %v", rs, err)
		}
	}
	waitUntil(t, "both real servers checked up and programmed everywhere", 30*time.Second, func() bool {
		return hc.health("rs1") == fsm.HealthUp && hc.health("rs2") == fsm.HealthUp && hc.inRotation(2)
	})
	return hc
}

// inRotation reports whether every director's table has want real servers in rotation.
func (hc *healthCluster) inRotation(want int) bool {
	for _, d := range hc.directors {
		if programmedDests(d.table, hc.vip) != want {
			return false
		}
	}
	return true
}

func (hc *healthCluster) health(rs string) fsm.Health {
	h, _ := realServerOf(hc.directors[0], "web", hc.lab.addr[rs])
	return h.Health
}

func TestHealthChecksTakeAFailedServerOutEverywhereAndBringItBack(t *testing.T) {
	hc := newHealthCluster(t, &fsm.HealthCheck{Type: fsm.CheckHTTP, Path: "/", IntervalMS: 300, TimeoutMS: 200, Rise: 1, Fall: 2})
	lab, webs, c, ctx := hc.lab, hc.webs, hc.client, context.Background()
	d1, d2, d3 := hc.directors[0], hc.directors[1], hc.directors[2]
	health, inRotation := hc.health, func(n int) func() bool { return func() bool { return hc.inRotation(n) } }
	_ = d1

	// rs1's service dies: every director sees it, the leader takes it out everywhere.
	failed := time.Now()
	webs["rs1"].stop()
	waitUntil(t, "rs1 out of rotation on every director", 30*time.Second, func() bool {
		return health("rs1") == fsm.HealthDown && inRotation(1)()
	})
	t.Logf("a failed real server out of rotation on all three directors after %s (interval 300 ms, fall 2)", time.Since(failed).Round(10*time.Millisecond))
	if rs, _ := realServerOf(d2, "web", lab.addr["rs1"]); rs.HealthReason == "" || rs.HealthSince.IsZero() {
		t.Errorf("the committed verdict has no reason or time: %+v", rs)
	}

	// It comes back: back in rotation everywhere.
	webs["rs1"].start()
	waitUntil(t, "rs1 back in rotation on every director", 30*time.Second, func() bool {
		return health("rs1") == fsm.HealthUp && inRotation(2)()
	})

	// d3 alone is cut off from rs2 (nftables in d3's namespace): its view says down, the
	// other two say up, and rs2 stays in rotation.
	nft := func(args ...string) {
		runIn(t, "ip", append([]string{"netns", "exec", lab.ns["d3"], "nft"}, args...)...)
	}
	nft("add", "table", "inet", "raftlvs_test")
	nft("add", "chain", "inet", "raftlvs_test", "out", "{ type filter hook output priority 0; }")
	nft("add", "rule", "inet", "raftlvs_test", "out", "ip", "daddr", lab.addr["rs2"].String(), "tcp", "dport", "80", "drop")
	waitUntil(t, "d3's view of rs2 down, at the leader", 30*time.Second, func() bool {
		views, err := c.HealthViews(ctx)
		if err != nil {
			return false
		}
		for _, v := range views.Views {
			for _, s := range v.Servers {
				if v.Director == "d3" && s.Key.Addr == lab.addr["rs2"] && s.Health == fsm.HealthDown {
					return true
				}
			}
		}
		return false
	})
	// A dozen check intervals and leader passes: the lone view never evicts.
	for deadline := time.Now().Add(4 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if health("rs2") != fsm.HealthUp || !inRotation(2)() {
			t.Fatal("one director's lone view of rs2 took it out of rotation")
		}
	}
	// The operator sees why through the CLI's data: d3's probe, from d3 itself.
	checks, err := api.NewClient(d3.d.APIAddr()).HealthChecks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var sawTimeout bool
	for _, p := range checks.Probes {
		sawTimeout = sawTimeout || (p.To.Addr() == lab.addr["rs2"] && !p.Up && p.Reason != "")
	}
	if !sawTimeout {
		t.Errorf("d3's own checks do not show rs2 failing: %+v", checks.Probes)
	}
	if _, err := api.NewClient(d3.d.APIAddr()).HealthViews(ctx); errors.Is(err, fsm.ErrNotFound) {
		t.Errorf("a follower does not forward the views to the leader: %v", err)
	}
}

// BenchmarkHealthDetection measures the time from a real server's failure (its HTTP
// server stopped) until every director's table has taken it out, with raftlvs's default
// check (every 2 s, 1 s timeout, three failures) and a fast one. Run as root:
//
//	go test -run '^$' -bench HealthDetection -benchtime 5x ./daemon
func BenchmarkHealthDetection(b *testing.B) {
	for _, tc := range []struct {
		name  string
		check fsm.HealthCheck
	}{
		{"default_2s_fall3", fsm.HealthCheck{Type: fsm.CheckHTTP}},
		{"fast_1s_fall2", fsm.HealthCheck{Type: fsm.CheckHTTP, IntervalMS: 1000, TimeoutMS: 500, Fall: 2}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			check := tc.check
			hc := newHealthCluster(b, &check)
			var total time.Duration
			for b.Loop() {
				failed := time.Now()
				hc.webs["rs1"].stop()
				waitUntil(b, "rs1 out everywhere", time.Minute, func() bool { return hc.inRotation(1) })
				total += time.Since(failed)
				b.StopTimer()
				hc.webs["rs1"].start()
				waitUntil(b, "rs1 back everywhere", time.Minute, func() bool { return hc.inRotation(2) })
				time.Sleep(time.Minute) // let the flap penalty decay: damping would hold it
				b.StartTimer()
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-to-out-everywhere")
		})
	}
}
