//go:build linux

package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/cluster"
	"github.com/raftlvs/raftlvs/cluster/gossip"
	"github.com/raftlvs/raftlvs/director"
	"github.com/raftlvs/raftlvs/director/ipvs"
	"github.com/raftlvs/raftlvs/director/vip"
	"github.com/raftlvs/raftlvs/fsm"
	"github.com/raftlvs/raftlvs/realserver"
)

// This file runs the agent's whole path on the host with the real assemblies: three
// directors in this process (daemon.New: real Raft over TCP with bolt files, real gossip,
// the registrar, the API; an in-memory IPVS table, since this kernel has none) and agents
// (realserver.NewDaemon) whose kernel side works in network namespaces the test creates.
// Traffic stays on 127.0.0.1 and inside those namespaces.

var testLog = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

type testDirector struct {
	id    string
	d     *Director
	table *ipvs.Fake
	stop  func() // ends the director and waits for it; the test's cleanup calls it too
}

func (td *testDirector) node() *cluster.Node { return td.d.Node() }

// startDirector runs a director of the test's cluster: the first bootstraps, the others
// join through its API.
func startDirector(t testing.TB, id string, key []byte, join string, options ...func(*Options)) *testDirector {
	t.Helper()
	// This test is about agents and their namespaces; security_test.go is about TLS.
	return startDirectorWith(t, id, key, join, Security{Insecure: true}, options...)
}

func startDirectorWith(t testing.TB, id string, key []byte, join string, sec Security, options ...func(*Options)) *testDirector {
	t.Helper()
	links := vip.NewFakeLinks()
	links.AddLink("eth0", net.HardwareAddr{2, 0, 0, 0, 0, byte(len(id))}, netip.MustParsePrefix("10.0.0.1/24"))
	td := &testDirector{id: id, table: ipvs.NewFake()}
	opts := Options{
		ID: id, DataDir: filepath.Join(t.TempDir(), id),
		RaftBind: "127.0.0.1:0", APIBind: "127.0.0.1:0", GossipBind: "127.0.0.1:0", GossipKey: key,
		Bootstrap: join == "",
		// raft's own (slower) timings: the race detector on two shared cores stalls.
		HeartbeatTimeout: time.Second, ElectionTimeout: time.Second, LeaderLeaseTimeout: 500 * time.Millisecond,
		VIP:      vip.Config{Interface: "eth0", Burst: 1, Refresh: -1},
		DrainMax: 5 * time.Second, ReapDelay: time.Minute,
		Kernel:   &director.Kernel{IPVS: td.table, Stats: td.table, Links: links, Announcer: vip.NewFakeAnnouncer(links)},
		Logger:   testLog,
		Security: sec,
	}
	if join != "" {
		opts.Join = []string{join}
	}
	for _, o := range options {
		o(&opts)
	}
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	td.d = d
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := d.Run(ctx); err != nil {
			t.Errorf("director %s: %v", id, err)
		}
	}()
	var once sync.Once
	td.stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(td.stop)
	return td
}

// startThree runs a cluster of three directors, d1 bootstrapping and d2, d3 joining it,
// and waits until each is a voter that knows its leader. optionsFor, if set, gives a
// director's options by its id.
func startThree(t testing.TB, key []byte, optionsFor func(id string) []func(*Options)) []*testDirector {
	t.Helper()
	opts := func(id string) []func(*Options) {
		if optionsFor == nil {
			return nil
		}
		return optionsFor(id)
	}
	d1 := startDirector(t, "d1", key, "", opts("d1")...)
	waitUntil(t, "d1 leads", 20*time.Second, d1.node().IsLeader)
	directors := []*testDirector{d1, startDirector(t, "d2", key, d1.d.APIAddr(), opts("d2")...), startDirector(t, "d3", key, d1.d.APIAddr(), opts("d3")...)}
	for _, d := range directors {
		waitUntil(t, d.id+" a voter that knows its leader", 30*time.Second, func() bool {
			st := d.node().Status()
			return st.LeaderID != "" && len(st.Voters) == 3
		})
	}
	return directors
}

// localCheck is an agent's own check and the directory its exec command lives in.
type localCheck struct {
	spec *fsm.HealthCheck
	dir  string
}

// testAgent is an agent whose gossip runs on loopback and whose kernel side is a netns.
type testAgent struct {
	id, ns   string
	addr     netip.Addr
	pool     *gossip.Pool
	cancel   context.CancelFunc
	done     chan error    // Run's result
	finished chan struct{} // closed once Run has returned
}

func startAgent(t *testing.T, id, ns string, addr netip.Addr, key []byte, join []string, service string, check ...localCheck) *testAgent {
	t.Helper()
	a := &testAgent{id: id, ns: ns, addr: addr, done: make(chan error, 1), finished: make(chan struct{})}
	h, err := netns.GetFromName(a.ns)
	if err != nil {
		t.Fatal(err)
	}
	host, err := realserver.NewNetlinkHostAt(h)
	if err != nil {
		h.Close()
		t.Fatal(err)
	}
	cfg := realserver.Config{
		ID: id, Addr: addr, Services: []realserver.ServiceSpec{{Name: service, Weight: 3}},
		Interface: "eth0", StateFile: filepath.Join(t.TempDir(), "agent.json"),
		PollInterval: 500 * time.Millisecond, DrainTimeout: 20 * time.Second, Logger: testLog,
	}
	// The test owns the agent's pool, so that it can crash the agent (its gossip stops
	// without a leave) without ending its Run.
	a.pool, err = gossip.New(gossip.Config{NodeName: id, BindAddr: "127.0.0.1", SecretKey: key, Join: join, Logger: testLog},
		realserver.AgentMeta(cfg))
	if err != nil {
		t.Fatal(err)
	}
	dc := realserver.DaemonConfig{Agent: cfg, Host: host, Pool: a.pool, Security: realserver.Security{Insecure: true}}
	if len(check) > 0 {
		dc.Check, dc.ExecCheckDir = check[0].spec, check[0].dir
	}
	d, err := realserver.NewDaemon(dc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	go func() {
		a.done <- d.Run(ctx)
		close(a.finished)
	}()
	// Stop the agent and wait for it before closing what it uses.
	t.Cleanup(func() {
		cancel()
		select {
		case <-a.finished:
		case <-time.After(time.Minute):
			t.Errorf("agent %s did not stop", id)
		}
		a.pool.Shutdown()
		host.Close()
		h.Close()
	})
	return a
}

// newTestNetns makes a namespace with an "eth0" (one end of a veth pair whose other end
// stays in the namespace too) holding addr, and deletes it at the end of the test.
func newTestNetns(t *testing.T, addr netip.Addr) string {
	t.Helper()
	name := fmt.Sprintf("raftlvs-test-%d-%s", os.Getpid(), strings.ReplaceAll(addr.String(), ".", "-"))
	runIn(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	runIn(t, "ip", "-n", name, "link", "add", "eth0", "type", "veth", "peer", "name", "peer0")
	runIn(t, "ip", "-n", name, "addr", "add", addr.String()+"/24", "dev", "eth0")
	runIn(t, "ip", "-n", name, "link", "set", "eth0", "up")
	runIn(t, "ip", "-n", name, "link", "set", "peer0", "up")
	runIn(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

func runIn(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// nsView is what the test compares before and after an agent: lo's addresses and the
// sysctls the agent may change, read inside the namespace.
func nsView(t *testing.T, ns string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(runIn(t, "ip", "-n", ns, "-o", "addr", "show", "dev", "lo"))
	for _, p := range []string{"all/arp_ignore", "all/arp_announce", "eth0/arp_ignore", "eth0/arp_announce", "all/rp_filter"} {
		fmt.Fprintf(&b, "%s=%s", p, runIn(t, "ip", "netns", "exec", ns, "cat", "/proc/sys/net/ipv4/conf/"+p))
	}
	return b.String()
}

func waitUntil(t testing.TB, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, limit)
		}
	}
}

func realServerOf(d *testDirector, service string, addr netip.Addr) (rs fsm.RealServer, ok bool) {
	d.node().View(func(st *fsm.State) {
		for _, r := range st.RealServers(service) {
			if r.Addr == addr {
				rs, ok = r, true
			}
		}
	})
	return rs, ok
}

func TestAgentsRegisterConfigureTheirNamespaceAndLeave(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2")
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	directors := startThree(t, key, nil)
	d1, d2, d3 := directors[0], directors[1], directors[2]
	seed := []string{d1.d.GossipAddr().String()}
	vipAddr := netip.MustParseAddr("192.0.2.80")
	// Through the API, as an operator would; the client waits out a leader change.
	if _, err := api.NewClient(d2.d.APIAddr()).AddService(context.Background(), fsm.Service{
		Name: "web", Protocol: fsm.TCP, VIP: vipAddr, Port: 80, Scheduler: "wrr", Forwarding: fsm.DR}); err != nil {
		t.Fatalf("add service: %v", err)
	}

	// An agent with the wrong key never gets in.
	intruder, err := gossip.New(gossip.Config{NodeName: "intruder", BindAddr: "127.0.0.1",
		SecretKey: []byte("fedcba9876543210fedcba9876543210"), Join: seed, Logger: testLog},
		gossip.Meta{Role: gossip.RoleAgent, ID: "intruder", Addr: netip.MustParseAddr("10.99.0.66"),
			Services: []gossip.ServicePort{{Service: "web", Weight: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	defer intruder.Shutdown()

	addrA, addrB := netip.MustParseAddr("10.99.0.11"), netip.MustParseAddr("10.99.0.12")
	a := startAgent(t, "rs-a", newTestNetns(t, addrA), addrA, key, seed, "web")
	nsB := newTestNetns(t, addrB)
	before := nsView(t, nsB)
	b := startAgent(t, "rs-b", nsB, addrB, key, seed, "web")

	// Both register, on every director, active at their weight.
	for _, d := range directors {
		for _, ag := range []*testAgent{a, b} {
			waitUntil(t, ag.id+" registered on "+d.id, 30*time.Second, func() bool {
				rs, ok := realServerOf(d, "web", ag.addr)
				return ok && rs.Origin == fsm.AgentOrigin(ag.id) && rs.Admin == fsm.Active && rs.Weight == 3
			})
		}
	}
	// Each agent configured its own namespace for DR.
	for _, ag := range []*testAgent{a, b} {
		waitUntil(t, ag.id+" VIP on lo", 20*time.Second, func() bool {
			return strings.Contains(runIn(t, "ip", "-n", ag.ns, "-o", "addr", "show", "dev", "lo"), vipAddr.String()+"/32 scope host")
		})
		v := nsView(t, ag.ns)
		for _, want := range []string{"all/arp_ignore=1", "all/arp_announce=2", "eth0/arp_ignore=1", "eth0/arp_announce=2"} {
			if !strings.Contains(v, want) {
				t.Errorf("%s: want %s in %s", ag.id, want, v)
			}
		}
	}
	if _, ok := realServerOf(d1, "web", netip.MustParseAddr("10.99.0.66")); ok {
		t.Error("the agent with the wrong gossip key was registered")
	}
	// Every director programmed both agents' real servers into its IPVS table.
	for _, d := range directors {
		waitUntil(t, d.id+" programmed both agents", 20*time.Second, func() bool {
			return programmedDests(d.table, vipAddr) == 2
		})
	}

	// An agent whose own check fails votes its real server down, and the leader takes it
	// out everywhere.
	checks := t.TempDir()
	if err := os.WriteFile(filepath.Join(checks, "unwell"), []byte("#!/bin/sh\necho 'db: connection refused'\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	addrC := netip.MustParseAddr("10.99.0.13")
	startAgent(t, "rs-c", newTestNetns(t, addrC), addrC, key, seed, "web", localCheck{dir: checks,
		spec: &fsm.HealthCheck{Type: fsm.CheckExec, Command: []string{filepath.Join(checks, "unwell")}, IntervalMS: 200, TimeoutMS: 150, Rise: 1, Fall: 1}})
	for _, d := range directors {
		waitUntil(t, "rs-c voted down on "+d.id, 30*time.Second, func() bool {
			rs, ok := realServerOf(d, "web", addrC)
			return ok && rs.Health == fsm.HealthDown && strings.Contains(rs.HealthReason, "agent: rs-c: ")
		})
		// The state first, then the director's reconciler programs it.
		waitUntil(t, d.id+" programs 2 real servers in rotation (rs-c is down)", 20*time.Second, func() bool {
			return programmedDests(d.table, vipAddr) == 2
		})
	}

	// A crash (no leave: gossip just stops) takes rs-a out of rotation at once.
	crashed := time.Now()
	a.pool.Shutdown()
	waitUntil(t, "crashed agent out of rotation", 30*time.Second, func() bool {
		rs, ok := realServerOf(d2, "web", addrA)
		return ok && !rs.InRotation()
	})
	t.Logf("crashed agent out of rotation after %s (gossip detection plus a Raft commit)", time.Since(crashed).Round(10*time.Millisecond))

	// A graceful stop drains, then removes, and leaves the namespace as it was found.
	b.cancel()
	waitUntil(t, "leaving agent drained", 30*time.Second, func() bool {
		rs, ok := realServerOf(d3, "web", addrB)
		return !ok || rs.Admin == fsm.Draining
	})
	waitUntil(t, "leaving agent removed", 30*time.Second, func() bool {
		_, ok := realServerOf(d3, "web", addrB)
		return !ok
	})
	select {
	case err := <-b.done:
		if err != nil {
			t.Fatalf("graceful stop: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the agent did not finish its graceful stop")
	}
	if after := nsView(t, nsB); after != before {
		t.Fatalf("the agent left its namespace changed:\nbefore %s\nafter  %s", before, after)
	}
}

// programmedDests counts the destinations of the service on vipAddr:80 in a director's
// in-memory IPVS table.
func programmedDests(table *ipvs.Fake, vipAddr netip.Addr) int {
	svcs, err := table.Services()
	if err != nil {
		return -1
	}
	for _, s := range svcs {
		if s.Address == vipAddr && s.Port == 80 {
			dests, err := table.Destinations(s)
			if err != nil {
				return -1
			}
			n := 0
			for _, d := range dests {
				if d.Weight > 0 {
					n++
				}
			}
			return n
		}
	}
	return 0
}
