package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
	"github.com/raftlvs/raftlvs/pki/pkitest"
)

var verboseRaft = flag.Bool("cluster.log", false, "log raft and cluster output to stderr")

// pollTimeout bounds every wait for an election, a replication or a step-down: generous
// for a loaded two-core CI machine running -race, far above the ~1 s failover.
const pollTimeout = 10 * time.Second

// eventually polls cond until it holds or pollTimeout passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(pollTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", pollTimeout, what)
		}
		<-tick.C
	}
}

func testLogger() *slog.Logger {
	if *verboseRaft {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return discardLogger()
}

// leaderDuties records where and when the leader duties run, across every node of a test.
type leaderDuties struct {
	mu         sync.Mutex
	active     map[string]bool
	maxRunning int
	starts     int
	problems   []string
}

func newLeaderDuties() *leaderDuties { return &leaderDuties{active: map[string]bool{}} }

// duty is the leader duty of node.
func (d *leaderDuties) duty(node *Node) Duty {
	id := node.ID()
	return Duty{Name: "record", Run: func(ctx context.Context, started func()) error {
		started()
		d.mu.Lock()
		d.active[id] = true
		d.starts++
		running := 0
		for _, on := range d.active {
			if on {
				running++
			}
		}
		d.maxRunning = max(d.maxRunning, running)
		d.mu.Unlock()

		// Leader duties may rely on this node's own entry and the cluster id.
		node.View(func(s *fsm.State) {
			if _, ok := s.Director(id); !ok || s.ClusterID() == "" {
				d.problem("%s: a duty started before its director entry and the cluster id were recorded", id)
			}
		})
		<-ctx.Done()

		d.mu.Lock()
		d.active[id] = false
		d.mu.Unlock()
		return nil
	}}
}

func (d *leaderDuties) problem(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.problems = append(d.problems, fmt.Sprintf(format, args...))
}

// running lists the nodes whose duty is running now.
func (d *leaderDuties) running() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var ids []string
	for id, on := range d.active {
		if on {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

func (d *leaderDuties) check(t *testing.T) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range d.problems {
		t.Error(p)
	}
	if d.maxRunning > 1 {
		t.Errorf("leader duties ran on %d nodes at once, want at most 1", d.maxRunning)
	}
}

// testCluster runs directors on 127.0.0.1 with real bolt files.
type testCluster struct {
	t testing.TB
	// ourDefaults runs the package's default timings instead of the slower test ones.
	ourDefaults bool
	// pki, if set, gives every node a director certificate: Raft over mutual TLS.
	pki    *pkitest.Cluster
	duties *leaderDuties
	mu     sync.Mutex
	nodes  map[string]*Node // open nodes by id
	cfgs   map[string]Config
}

func newTestCluster(t testing.TB) *testCluster {
	tc := &testCluster{t: t, duties: newLeaderDuties(), nodes: map[string]*Node{}, cfgs: map[string]Config{}}
	t.Cleanup(func() {
		for _, n := range tc.open() {
			if err := n.Close(); err != nil {
				t.Errorf("close %s: %v", n.ID(), err)
			}
		}
	})
	return tc
}

// start opens node id; a restart reuses its data dir, Raft address and options. Each
// option adjusts the config of the first start.
func (tc *testCluster) start(id string, bootstrap bool, options ...func(*Config)) *Node {
	tc.t.Helper()
	cfg, restart := tc.cfgs[id]
	if !restart {
		cfg = Config{
			NodeID:    id,
			DataDir:   tc.t.TempDir(),
			RaftBind:  "127.0.0.1:0",
			APIAddr:   fmt.Sprintf("127.0.0.1:%d", 18000+len(tc.cfgs)), // never dialled
			Bootstrap: bootstrap,
			Logger:    testLogger(),
			// Raft's own defaults (the relaxed profile): a loaded two-core machine running -race
			// stalls for hundreds of milliseconds, and every stall past the lease is an
			// election the test must then ride out. The benchmark runs our defaults.
			HeartbeatTimeout:   time.Second,
			ElectionTimeout:    time.Second,
			LeaderLeaseTimeout: 500 * time.Millisecond,
		}
		if tc.ourDefaults {
			cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 0, 0, 0
		}
		if tc.pki != nil {
			cfg.TLS = tc.pki.Director(id)
		}
		for _, o := range options {
			o(&cfg)
		}
	}
	n, err := Open(cfg)
	if err != nil {
		tc.t.Fatalf("open %s: %v", id, err)
	}
	if cfg.Witness {
		n.Lead(n.WitnessDuty(), tc.duties.duty(n))
	} else {
		n.Lead(tc.duties.duty(n))
	}
	tc.mu.Lock()
	tc.nodes[id] = n
	tc.mu.Unlock()
	cfg.RaftBind = n.Self().RaftAddr // a restart must come back on the address peers know
	tc.cfgs[id] = cfg
	return n
}

func (tc *testCluster) stop(id string) {
	tc.t.Helper()
	tc.mu.Lock()
	n := tc.nodes[id]
	delete(tc.nodes, id)
	tc.mu.Unlock()
	if err := n.Close(); err != nil {
		tc.t.Fatalf("close %s: %v", id, err)
	}
}

func (tc *testCluster) open() []*Node {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	var out []*Node
	for _, n := range tc.nodes {
		out = append(out, n)
	}
	return out
}

// leader waits until exactly one of the nodes leads and all of them know it. No nodes
// means all open nodes.
func (tc *testCluster) leader(among ...*Node) *Node {
	tc.t.Helper()
	if len(among) == 0 {
		among = tc.open()
	}
	var leader *Node
	eventually(tc.t, "one leader that all nodes agree on", func() bool {
		leader = nil
		for _, n := range among {
			if n.IsLeader() {
				if leader != nil {
					return false
				}
				leader = n
			}
		}
		if leader == nil {
			return false
		}
		for _, n := range among {
			if id, _ := n.Leader(); id != leader.ID() {
				return false
			}
		}
		return true
	})
	return leader
}

// anyLeader waits until some open node leads (nodes not joined yet know no leader).
func (tc *testCluster) anyLeader() *Node {
	tc.t.Helper()
	var leader *Node
	eventually(tc.t, "a leader", func() bool {
		for _, n := range tc.open() {
			if n.IsLeader() {
				leader = n
				return true
			}
		}
		return false
	})
	return leader
}

// established waits until n leads and has recorded its own entry (its leader loop got
// past Barrier), so the next writes do not race the leader loop's first ones.
func (tc *testCluster) established(n *Node) {
	tc.t.Helper()
	eventually(tc.t, n.ID()+" to lead and record its own entry", func() bool {
		_, err := n.LeaderAPIAddr()
		return n.IsLeader() && err == nil
	})
}

// retriable reports whether an error means "try again on the leader". Leadership may
// move at any time under load (a stall longer than the lease is an election), as it may
// in production; tests ride it out as the HTTP layer's forwarding does.
func retriable(err error) bool {
	return errors.Is(err, ErrNotLeader) || errors.Is(err, ErrLeadershipLost)
}

// join joins n through whichever node leads, retrying across leadership changes.
// pair starts d1 (bootstrapped, leading, with its own entry recorded) and d2 joined to it.
func (tc *testCluster) pair(ctx context.Context) (d1, d2 *Node) {
	d1 = tc.start("d1", true)
	d2 = tc.start("d2", false)
	tc.leader(d1)
	tc.established(d1)
	tc.join(ctx, d2)
	return d1, d2
}

func (tc *testCluster) join(ctx context.Context, n *Node) {
	tc.t.Helper()
	var err error
	eventually(tc.t, "join "+n.ID(), func() bool {
		err = tc.anyLeader().Join(ctx, n.Self())
		return !retriable(err)
	})
	if err != nil {
		tc.t.Fatalf("join %s: %v", n.ID(), err)
	}
}

// apply writes c through whichever node leads. After an uncertain attempt (leadership
// lost while committing) a rejection because the change is already there is success.
func (tc *testCluster) apply(ctx context.Context, c fsm.Command) {
	tc.t.Helper()
	var err error
	uncertain := false
	eventually(tc.t, fmt.Sprintf("write %T", c), func() bool {
		err = tc.anyLeader().Apply(ctx, c)
		if uncertain && errors.Is(err, fsm.ErrExists) {
			err = nil
		}
		uncertain = uncertain || errors.Is(err, ErrLeadershipLost)
		return !retriable(err)
	})
	if err != nil {
		tc.t.Fatalf("write %T: %v", c, err)
	}
}

func voterIDs(t testing.TB, n *Node) []string {
	t.Helper()
	st := n.Status()
	if st.Error != "" {
		t.Fatalf("status of %s: %s", n.ID(), st.Error)
	}
	var ids []string
	for _, v := range st.Voters {
		if v.Suffrage == "Voter" {
			ids = append(ids, v.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

func hasRealServer(n *Node, addr string) bool {
	var ok bool
	n.View(func(s *fsm.State) {
		_, ok = s.RealServer(fsm.RSKey{Service: "web", Addr: netip.MustParseAddr(addr), Port: 80})
	})
	return ok
}

func TestThreeDirectorsReplicateFailOverRecoverAndShrink(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tc := newTestCluster(t)
	defer tc.duties.check(t)

	// Bootstrap one, join two.
	d1 := tc.start("d1", true)
	d2 := tc.start("d2", false)
	d3 := tc.start("d3", false)
	if got := tc.leader(d1); got != d1 {
		t.Fatalf("leader %s, want the bootstrapped d1", got.ID())
	}
	tc.established(d1)
	for _, n := range []*Node{d2, d3, d2} { // d2 twice: joining is idempotent
		tc.join(ctx, n)
	}
	first := tc.leader()
	if got, want := voterIDs(t, first), []string{"d1", "d2", "d3"}; !slices.Equal(got, want) {
		t.Fatalf("voters %v, want %v", got, want)
	}
	follower := d2
	if follower == first {
		follower = d3
	}
	if err := follower.Join(ctx, d3.Self()); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("join through a follower: %v, want ErrNotLeader", err)
	}

	// A write through a follower is refused with the leader's API address to forward to;
	// the same write through the leader is visible everywhere.
	add := fsm.AddService{Service: webService()}
	if err := follower.Apply(ctx, add); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("write through follower: %v, want ErrNotLeader", err)
	}
	eventually(t, "the follower to learn the leader's API address", func() bool {
		addr, err := follower.LeaderAPIAddr()
		return err == nil && addr == tc.cfgs[tc.leader().ID()].APIAddr
	})
	tc.apply(ctx, add)
	if err := tc.leader().Apply(ctx, add); !errors.Is(err, fsm.ErrExists) {
		t.Fatalf("duplicate write: %v, want fsm.ErrExists", err)
	}
	tc.apply(ctx, fsm.AddRealServer{RealServer: webServer("198.51.100.1")})
	for _, n := range tc.open() {
		eventually(t, n.ID()+" to see the writes", func() bool { return hasRealServer(n, "198.51.100.1") })
	}
	first = tc.leader()
	eventually(t, "duties on the leader only", func() bool {
		return slices.Equal(tc.duties.running(), []string{first.ID()})
	})

	// Kill the leader: its duties stop before Close returns, a new leader takes writes.
	tc.stop(first.ID())
	if got := tc.duties.running(); len(got) != 0 {
		t.Fatalf("duties still running on %v after the leader closed", got)
	}
	second := tc.leader()
	tc.apply(ctx, fsm.AddRealServer{RealServer: webServer("198.51.100.2")})
	second = tc.leader()
	eventually(t, "duties on the new leader", func() bool {
		return slices.Equal(tc.duties.running(), []string{second.ID()})
	})

	// The killed node comes back from its data dir (Bootstrap still set: ignored) and
	// catches up with what it missed.
	restarted := tc.start(first.ID(), true)
	eventually(t, "the restarted node to catch up", func() bool { return hasRealServer(restarted, "198.51.100.2") })
	var got, want string
	restarted.View(func(s *fsm.State) { got = s.ClusterID() })
	second.View(func(s *fsm.State) { want = s.ClusterID() })
	if got != want || got == "" {
		t.Fatalf("restarted node has cluster id %q, leader has %q", got, want)
	}
	second = tc.leader()

	// The leader leaves as the API makes it: it hands leadership over (its duties stop
	// before the next leader's start), then the new leader removes it.
	if err := second.TransferLeadership(ctx, ""); err != nil {
		t.Fatalf("%s hands over: %v", second.ID(), err)
	}
	if got := tc.duties.running(); slices.Contains(got, second.ID()) {
		t.Fatalf("leader duties still running on %s after it handed over", second.ID())
	}
	var err error
	eventually(t, "the new leader to remove "+second.ID(), func() bool {
		l := tc.anyLeader()
		if l == second {
			return false
		}
		err = l.Remove(ctx, second.ID())
		return !retriable(err)
	})
	if err != nil {
		t.Fatalf("remove %s: %v", second.ID(), err)
	}
	tc.stop(second.ID())
	third := tc.leader()
	var remaining []string
	for _, id := range []string{"d1", "d2", "d3"} {
		if id != second.ID() {
			remaining = append(remaining, id)
		}
	}
	if got := voterIDs(t, third); !slices.Equal(got, remaining) {
		t.Fatalf("voters after leave %v, want %v", got, remaining)
	}
	for _, n := range tc.open() {
		eventually(t, n.ID()+" to forget the director that left", func() bool {
			var ok bool
			n.View(func(s *fsm.State) { _, ok = s.Director(second.ID()) })
			return !ok
		})
	}

	st := third.Status()
	if st.State != "Leader" || st.LeaderID != third.ID() || st.Term == 0 || st.AppliedIndex == 0 ||
		st.ClusterID == "" || st.StateVersion == 0 || len(st.Voters) != 2 {
		t.Fatalf("leader status %+v", st)
	}
	for _, v := range st.Voters {
		if v.APIAddr != tc.cfgs[v.ID].APIAddr {
			t.Fatalf("voter %s API address %q, want %q", v.ID, v.APIAddr, tc.cfgs[v.ID].APIAddr)
		}
	}
	if _, err := json.Marshal(st); err != nil {
		t.Fatal(err)
	}

	// Losing quorum (the other voter stops) makes the leader step down, and its
	// duties are cancelled and return.
	for _, n := range tc.open() {
		if n != third {
			tc.stop(n.ID())
		}
	}
	eventually(t, "the leader without quorum to step down and stop its duties", func() bool {
		return !third.IsLeader() && len(tc.duties.running()) == 0
	})
	if err := third.Apply(ctx, fsm.RemoveService{Name: "web"}); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("write without quorum: %v, want ErrNotLeader", err)
	}
}

func TestTransferLeadershipStopsDutiesBeforeTheNextLeaderStarts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tc := newTestCluster(t)
	defer tc.duties.check(t)
	d1, d2 := tc.pair(ctx)
	from, to := d1, d2
	if tc.leader() == d2 { // leadership moved while joining: the machine is loaded
		from, to = d2, d1
	}
	eventually(t, "duties on the leader", func() bool { return slices.Equal(tc.duties.running(), []string{from.ID()}) })

	if err := to.TransferLeadership(ctx, from.ID()); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("transfer from a follower: %v, want ErrNotLeader", err)
	}
	if err := from.TransferLeadership(ctx, "nobody"); !errors.Is(err, fsm.ErrNotFound) {
		t.Fatalf("transfer to an unknown id: %v, want fsm.ErrNotFound", err)
	}
	// To itself: refused before its duties stop (the VIPs would go for nothing).
	tc.duties.mu.Lock()
	starts := tc.duties.starts
	tc.duties.mu.Unlock()
	if err := from.TransferLeadership(ctx, from.ID()); !errors.Is(err, fsm.ErrConflict) {
		t.Fatalf("transfer to the leader itself: %v, want fsm.ErrConflict", err)
	}
	tc.duties.mu.Lock()
	restarted := tc.duties.starts != starts
	tc.duties.mu.Unlock()
	if restarted && from.IsLeader() {
		t.Fatal("a transfer to itself stopped and restarted the leader's duties")
	}
	if err := from.Remove(ctx, from.ID()); !errors.Is(err, fsm.ErrConflict) {
		t.Fatalf("leader removing itself: %v, want fsm.ErrConflict", err)
	}
	if err := from.TransferLeadership(ctx, to.ID()); err != nil {
		t.Fatal(err)
	}
	// No poll: the old leader's duties returned before TransferLeadership did.
	if got := tc.duties.running(); slices.Contains(got, from.ID()) {
		t.Fatalf("%s's duties still running after the transfer returned", from.ID())
	}
	tc.established(to)
	eventually(t, "duties on the new leader", func() bool { return slices.Equal(tc.duties.running(), []string{to.ID()}) })
	tc.apply(ctx, fsm.AddService{Service: webService()})
}

func TestWatchSignalsReplicatedChangesOnFollowers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tc := newTestCluster(t)
	_, d2 := tc.pair(ctx)
	watch, stop := d2.Watch()
	defer stop()
	tc.apply(ctx, fsm.AddService{Service: webService()})
	deadline := time.After(pollTimeout)
	for {
		select {
		case <-watch:
		case <-deadline:
			t.Fatal("follower never saw the write through Watch")
		}
		var ok bool
		d2.View(func(s *fsm.State) { _, ok = s.Service("web") })
		if ok {
			return
		}
	}
}

func TestCloseIsIdempotentAndFailsLaterCalls(t *testing.T) {
	tc := newTestCluster(t)
	d1 := tc.start("d1", true)
	tc.leader()
	tc.stop("d1")
	if err := d1.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if err := d1.Apply(context.Background(), fsm.AddService{Service: webService()}); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("apply after close: %v, want ErrNotLeader", err)
	}
}

// A consistent read's barrier on an established leader is a heartbeat round: it logs
// nothing, and the state it vouches for has every write acknowledged before it.
func TestReadIndexLogsNothingAndSeesEveryAcknowledgedWrite(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tc := newTestCluster(t)
	d1, d2 := tc.pair(ctx)
	tc.apply(ctx, fsm.AddService{Service: webService()})
	var version uint64
	d1.View(func(s *fsm.State) { version = s.Version() })
	last := d1.raft.LastIndex()
	for range 10 {
		if err := d1.ReadIndex(ctx); err != nil {
			t.Fatalf("read index: %v", err)
		}
	}
	if got := d1.raft.LastIndex(); got != last {
		t.Errorf("ten read indexes logged %d entries", got-last)
	}
	var now uint64
	d1.View(func(s *fsm.State) { now = s.Version() })
	if now < version {
		t.Errorf("state version %d after the read index, below the acknowledged write's %d", now, version)
	}
	if err := d2.ReadIndex(ctx); !errors.Is(err, ErrNotLeader) {
		t.Errorf("a follower's read index: %v, want ErrNotLeader", err)
	}
}
