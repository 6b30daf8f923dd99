package director

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/director/ipvs"
	"github.com/raftlvs/raftlvs/director/syncd"
	"github.com/raftlvs/raftlvs/director/vip"
	"github.com/raftlvs/raftlvs/fsm"
)

// fakeCluster is a replicated state with change notification and a leadership flag.
type fakeCluster struct {
	mu       sync.Mutex
	st       *fsm.State
	leader   bool
	watchers []chan struct{}
	ready    chan struct{}
}

// newFakeCluster returns a cluster that is caught up already.
func newFakeCluster() *fakeCluster {
	c := &fakeCluster{st: fsm.NewState(), ready: make(chan struct{})}
	close(c.ready)
	return c
}

func (c *fakeCluster) Ready() <-chan struct{} { return c.ready }

func (c *fakeCluster) View(fn func(*fsm.State)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fn(c.st)
}

func (c *fakeCluster) Watch() (<-chan struct{}, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan struct{}, 1)
	c.watchers = append(c.watchers, ch)
	return ch, func() {}
}

func (c *fakeCluster) IsLeader() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leader
}

func (c *fakeCluster) apply(t *testing.T, cmd fsm.Command) {
	t.Helper()
	c.mu.Lock()
	p, err := c.st.Prepare(cmd)
	if err == nil {
		err = c.st.Execute(p)
	}
	watchers := slices.Clone(c.watchers)
	c.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range watchers {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// fakeSync records sync daemon starts and stops, and whether the VIP interface still held
// a VIP when the master was stopped.
type fakeSync struct {
	mu                 sync.Mutex
	running            map[syncd.State]bool
	events             []string
	links              *vip.FakeLinks
	vipsAtMasterStop   int
	masterStopObserved bool
}

func (f *fakeSync) Start(s syncd.State, _ syncd.Config) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.running[s] = true
	f.events = append(f.events, "start "+stateName(s))
	return nil
}

func (f *fakeSync) Stop(s syncd.State) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s == syncd.Master && f.running[s] {
		f.vipsAtMasterStop = len(f.links.Prefixes("eth0")) - 1 // minus the node address
		f.masterStopObserved = true
	}
	delete(f.running, s)
	f.events = append(f.events, "stop "+stateName(s))
	return nil
}

func (f *fakeSync) List() ([]syncd.Daemon, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []syncd.Daemon
	for s := range f.running {
		out = append(out, syncd.Daemon{State: s})
	}
	return out, nil
}

func stateName(s syncd.State) string {
	if s == syncd.Master {
		return "master"
	}
	return "backup"
}

type testRig struct {
	cluster *fakeCluster
	table   *ipvs.Fake
	links   *vip.FakeLinks
	sync    *fakeSync
	d       *Director
}

func newRig(t *testing.T) *testRig {
	t.Helper()
	links := vip.NewFakeLinks()
	links.AddLink("eth0", net.HardwareAddr{2, 0, 0, 0, 0, 1}, netip.MustParsePrefix("10.0.0.2/24"))
	r := &testRig{
		cluster: newFakeCluster(),
		table:   ipvs.NewFake(),
		links:   links,
		sync:    &fakeSync{running: map[syncd.State]bool{}, links: links},
	}
	d, err := New(Config{
		VIP:         vip.Config{Interface: "eth0", Burst: 1, Refresh: -1},
		SyncEnabled: true,
		Sync:        syncd.Config{Interface: "eth0", SyncID: 7},
		StateDir:    t.TempDir(),
	}, &Kernel{IPVS: r.table, Stats: r.table, Links: links, Announcer: vip.NewFakeAnnouncer(links), Sync: r.sync})
	if err != nil {
		t.Fatal(err)
	}
	r.d = d
	return r
}

func (r *testRig) addWeb(t *testing.T, vipAddr string) {
	t.Helper()
	name := "web-" + vipAddr
	r.cluster.apply(t, fsm.AddService{Service: fsm.Service{Name: name, Protocol: fsm.TCP, VIP: netip.MustParseAddr(vipAddr), Port: 80}})
	r.cluster.apply(t, fsm.AddRealServer{RealServer: fsm.RealServer{Service: name, Addr: netip.MustParseAddr("10.0.1.1"), Weight: 1}})
}

func (r *testRig) vipsHeld() []netip.Addr {
	var out []netip.Addr
	for _, p := range r.links.Prefixes("eth0") {
		if p.Bits() == 32 {
			out = append(out, p.Addr())
		}
	}
	return out
}

// eventually polls cond for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestFollowerProgramsIPVSRunsBackupAndHoldsNoVIP(t *testing.T) {
	r := newRig(t)
	r.addWeb(t, "192.0.2.10")
	// A master sync daemon left running by a crash while this node led.
	r.sync.running[syncd.Master] = true
	// A VIP left behind by a crash before this node restarted as a follower.
	r.links.AddPrefix("eth0", netip.MustParsePrefix("192.0.2.10/32"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.d.Run(ctx, r.cluster); close(done) }()

	eventually(t, "IPVS programmed", func() bool { return len(r.d.reconciler.Table()) == 1 })
	eventually(t, "stale VIP removed", func() bool { return len(r.vipsHeld()) == 0 })
	eventually(t, "backup sync daemon only", func() bool {
		r.sync.mu.Lock()
		defer r.sync.mu.Unlock()
		return r.sync.running[syncd.Backup] && !r.sync.running[syncd.Master]
	})

	cancel()
	<-done
	if d, _ := r.sync.List(); len(d) != 0 {
		t.Fatalf("backup sync daemon still running after Run returned: %v", d)
	}
}

func TestLeaderClaimsVIPsFollowsChangesAndReleasesFirst(t *testing.T) {
	r := newRig(t)
	r.addWeb(t, "192.0.2.10")
	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	go r.d.Run(runCtx, r.cluster)
	eventually(t, "backup sync daemon", func() bool { d, _ := r.sync.List(); return len(d) == 1 })

	r.cluster.mu.Lock()
	r.cluster.leader = true
	r.cluster.mu.Unlock()
	// As the cluster's leader loop runs them: in order, each in force before the next,
	// stopped first in, first out.
	loseLeadership := lead(t, r.d.HoldVIPs, r.d.RunSyncMaster)

	eventually(t, "VIP claimed", func() bool { return slices.Equal(r.vipsHeld(), []netip.Addr{netip.MustParseAddr("192.0.2.10")}) })
	eventually(t, "master sync daemon", func() bool { d, _ := r.sync.List(); return len(d) == 2 })

	r.addWeb(t, "192.0.2.11")
	eventually(t, "new VIP claimed", func() bool { return len(r.vipsHeld()) == 2 })
	eventually(t, "both services programmed", func() bool { return len(r.d.reconciler.Table()) == 2 })
	if st := r.d.Status(true); len(st.VIPs) != 2 || len(st.SyncDaemons) != 2 || len(st.Services) != 2 || st.Interface != "eth0" {
		t.Fatalf("status: %+v", st)
	}

	loseLeadership()
	if len(r.vipsHeld()) != 0 {
		t.Fatalf("VIPs still held after leadership loss: %v", r.vipsHeld())
	}
	r.sync.mu.Lock()
	defer r.sync.mu.Unlock()
	if !r.sync.masterStopObserved || r.sync.vipsAtMasterStop != 0 {
		t.Fatalf("master sync stopped while %d VIPs were still held: VIPs must go first", r.sync.vipsAtMasterStop)
	}
	if !r.sync.running[syncd.Backup] || r.sync.running[syncd.Master] {
		t.Fatalf("after leadership loss want backup only, got %v", r.sync.running)
	}
}

// lead runs duties as the cluster does and returns the func that ends the leadership.
func lead(t *testing.T, duties ...func(context.Context, func()) error) (lose func()) {
	t.Helper()
	var stops []func()
	for _, run := range duties {
		ctx, cancel := context.WithCancel(context.Background())
		started, done := make(chan struct{}), make(chan struct{})
		var once sync.Once
		go func() {
			defer close(done)
			if err := run(ctx, func() { once.Do(func() { close(started) }) }); err != nil {
				t.Errorf("duty: %v", err)
			}
		}()
		<-started
		stops = append(stops, func() { cancel(); <-done })
	}
	return func() {
		for _, stop := range stops {
			stop()
		}
	}
}

func TestConnectionsCountsTheRealServersActiveConnections(t *testing.T) {
	r := newRig(t)
	r.addWeb(t, "192.0.2.10")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.d.Run(ctx, r.cluster)
	eventually(t, "IPVS programmed", func() bool { return len(r.d.reconciler.Table()) == 1 })

	e := r.d.reconciler.Table()[0]
	dst := &ipvs.DestinationStats{
		Destination:       ipvs.DestKey{Address: netip.MustParseAddr("10.0.1.1"), Port: 80},
		ActiveConnections: 3, InactiveConnections: 4,
	}
	if err := r.table.SetStats(e.Service.Key(), ipvs.Counters{}, dst); err != nil {
		t.Fatal(err)
	}
	rs := fsm.RealServer{Service: "web-192.0.2.10", Addr: netip.MustParseAddr("10.0.1.1"), Port: 80}
	if n, err := r.d.Connections(rs); err != nil || n != 3 {
		t.Fatalf("Connections = %d, %v; want the 3 active ones", n, err)
	}
	rs.Port = 81
	if n, err := r.d.Connections(rs); err != nil || n != 0 {
		t.Fatalf("a real server not in the table has %d connections (%v); want 0", n, err)
	}
}

func TestNothingIsProgrammedBeforeTheNodeCaughtUp(t *testing.T) {
	r := newRig(t)
	r.cluster.ready = make(chan struct{}) // a restarted node: its state is not trusted yet
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.d.Run(ctx, r.cluster)
	eventually(t, "backup sync daemon", func() bool { d, _ := r.sync.List(); return len(d) == 1 })
	// Nothing can be awaited for "no pass ran"; a pass starts at once when Run does, so
	// a short wait after Run's first visible step shows it did not.
	time.Sleep(50 * time.Millisecond)
	if ops := r.table.Ops(); ops != (ipvs.OpCounts{}) {
		t.Fatalf("the kernel was read or written before the node caught up: %+v", ops)
	}
	r.addWeb(t, "192.0.2.10")
	close(r.cluster.ready)
	eventually(t, "IPVS programmed after catching up", func() bool { return len(r.d.reconciler.Table()) == 1 })
}
