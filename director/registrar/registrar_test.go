package registrar

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/cluster/gossip"
	"github.com/raftlvs/raftlvs/fsm"
)

// cluster is the leader's state behind a fake Apply: Prepare then Execute, as
// cluster.Node.Apply does through Raft.
type cluster struct {
	mu      sync.Mutex
	st      *fsm.State
	writes  int
	failing error // returned by Apply until cleared
}

func (c *cluster) View(fn func(*fsm.State)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fn(c.st)
}

func (c *cluster) Apply(_ context.Context, cmd fsm.Command) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failing != nil {
		return c.failing
	}
	p, err := c.st.Prepare(cmd)
	if err != nil {
		return err
	}
	if err := c.st.Execute(p); err != nil {
		return err
	}
	c.writes++
	return nil
}

func (c *cluster) rs(t *testing.T, service, addr string, port uint16) (fsm.RealServer, bool) {
	t.Helper()
	var rs fsm.RealServer
	var ok bool
	c.View(func(s *fsm.State) {
		rs, ok = s.RealServer(fsm.RSKey{Service: service, Addr: netip.MustParseAddr(addr), Port: port})
	})
	return rs, ok
}

func (c *cluster) count() (n int) {
	c.View(func(s *fsm.State) { n = len(s.AllRealServers()) })
	return n
}

func (c *cluster) writeCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

func (c *cluster) must(t *testing.T, cmd fsm.Command) {
	t.Helper()
	if err := c.Apply(context.Background(), cmd); err != nil {
		t.Fatalf("apply %T: %v", cmd, err)
	}
}

func newCluster(t *testing.T) *cluster {
	c := &cluster{st: fsm.NewState()}
	for _, svc := range []fsm.Service{
		{Name: "web", Protocol: fsm.TCP, VIP: netip.MustParseAddr("192.0.2.1"), Port: 80},
		{Name: "dns", Protocol: fsm.UDP, VIP: netip.MustParseAddr("192.0.2.1"), Port: 53},
		{Name: "dr", Protocol: fsm.TCP, VIP: netip.MustParseAddr("192.0.2.2"), Port: 443, Forwarding: fsm.DR},
	} {
		c.must(t, fsm.AddService{Service: svc})
	}
	c.writes = 0
	return c
}

type pool struct {
	mu      sync.Mutex
	members []gossip.Member
	events  chan gossip.Event
}

func (p *pool) Members() []gossip.Member {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]gossip.Member(nil), p.members...)
}

func (p *pool) Events() <-chan gossip.Event { return p.events }

func (p *pool) set(members ...gossip.Member) {
	p.mu.Lock()
	p.members = members
	p.mu.Unlock()
}

type conns struct {
	mu sync.Mutex
	n  map[string]int // by address; missing: unknown
}

func (c *conns) Connections(rs fsm.RealServer) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.n[rs.Addr.String()]
	if !ok {
		return 0, errors.New("not in the IPVS table")
	}
	return n, nil
}

func (c *conns) set(addr string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[addr] = n
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func agent(id string, n int, services ...gossip.ServicePort) gossip.Member {
	return gossip.Member{
		Name:  id,
		State: gossip.StateAlive,
		Meta:  gossip.Meta{Role: gossip.RoleAgent, ID: id, Addr: addrOf(n), Services: services},
	}
}

func dead(m gossip.Member) gossip.Member { m.State = gossip.StateDead; return m }
func left(m gossip.Member) gossip.Member { m.State = gossip.StateLeft; return m }
func draining(m gossip.Member) gossip.Member {
	m.Meta.Draining = true
	return m
}

func addrOf(n int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, 0, byte(n)}) }

func sp(service string, port uint16, weight int) gossip.ServicePort {
	return gossip.ServicePort{Service: service, Port: port, Weight: weight}
}

type harness struct {
	t     *testing.T
	c     *cluster
	pool  *pool
	conns *conns
	clock *clock
	logs  *bytes.Buffer
	r     *Registrar
}

const (
	maxDrain  = 60 * time.Second
	reapDelay = 30 * time.Second
)

func newHarness(t *testing.T, modify ...func(*Config)) *harness {
	h := &harness{
		t:     t,
		c:     newCluster(t),
		pool:  &pool{events: make(chan gossip.Event, 16)},
		conns: &conns{n: map[string]int{}},
		clock: &clock{now: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)},
		logs:  &bytes.Buffer{},
	}
	cfg := Config{
		Members: h.pool, State: h.c, Writer: h.c, Conns: h.conns,
		MaxDrain: maxDrain, ReapDelay: reapDelay, StartupGrace: -1,
		Now:    h.clock.Now,
		Logger: slog.New(slog.NewTextHandler(h.logs, nil)),
	}
	for _, m := range modify {
		m(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.r = r
	return h
}

func (h *harness) reconcile() {
	h.t.Helper()
	if err := h.r.Reconcile(context.Background()); err != nil {
		h.t.Fatalf("Reconcile: %v", err)
	}
}

// expect checks one real server: want nil means absent.
func (h *harness) expect(service string, n int, port uint16, want *fsm.RealServer) {
	h.t.Helper()
	got, ok := h.c.rs(h.t, service, addrOf(n).String(), port)
	switch {
	case want == nil && ok:
		h.t.Fatalf("%s %v:%d is still there: %+v", service, addrOf(n), port, got)
	case want != nil && !ok:
		h.t.Fatalf("%s %v:%d is missing", service, addrOf(n), port)
	case want != nil && got != *want:
		h.t.Fatalf("%s %v:%d\n got %+v\nwant %+v", service, addrOf(n), port, got, *want)
	}
}

func agentRS(id string, n int, service string, port uint16, weight int, admin fsm.AdminState) *fsm.RealServer {
	return &fsm.RealServer{
		Service: service, Addr: addrOf(n), Port: port, Weight: weight,
		Origin: fsm.AgentOrigin(id), Admin: admin, Health: fsm.HealthUnknown,
	}
}

func TestRegistersNewAgentAndWritesNothingWhenNothingChanged(t *testing.T) {
	h := newHarness(t)
	h.pool.set(agent("a1", 1, sp("web", 8080, 100), sp("dns", 0, 5)))
	h.reconcile()
	h.expect("web", 1, 8080, agentRS("a1", 1, "web", 8080, 100, fsm.Active))
	h.expect("dns", 1, 53, agentRS("a1", 1, "dns", 53, 5, fsm.Active)) // port 0: the service's
	if w := h.c.writeCount(); w != 2 {
		t.Fatalf("%d writes, want 2", w)
	}
	for range 3 {
		h.clock.advance(time.Minute)
		h.reconcile()
	}
	if w := h.c.writeCount(); w != 2 {
		t.Fatalf("%d writes after idle passes, want still 2", w)
	}
}

func TestFollowsMetaChangesAndKeepsHealth(t *testing.T) {
	h := newHarness(t)
	h.pool.set(agent("a1", 1, sp("web", 8080, 100), sp("dns", 53, 5)))
	h.reconcile()
	key := fsm.RSKey{Service: "web", Addr: addrOf(1), Port: 8080}
	h.c.must(t, fsm.SetHealth{Key: key, Health: fsm.HealthUp})

	h.pool.set(agent("a1", 1, sp("web", 8080, 30), sp("web", 8081, 30)))
	h.reconcile()
	want := agentRS("a1", 1, "web", 8080, 30, fsm.Active)
	want.Health = fsm.HealthUp
	h.expect("web", 1, 8080, want)
	h.expect("web", 1, 8081, agentRS("a1", 1, "web", 8081, 30, fsm.Active))
	h.expect("dns", 1, 53, nil)
}

func TestGracefulLeaveDrainsThenRemovesWhenConnectionsEnd(t *testing.T) {
	tests := []struct {
		name  string
		leave func(gossip.Member) gossip.Member
	}{
		{"left the pool", left},
		{"announces draining", draining},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			a1 := agent("a1", 1, sp("web", 8080, 100))
			h.pool.set(a1, agent("a2", 2, sp("web", 8080, 100)))
			h.reconcile()

			h.pool.set(tt.leave(a1), agent("a2", 2, sp("web", 8080, 100)))
			h.conns.set(addrOf(1).String(), 3)
			h.reconcile()
			h.expect("web", 1, 8080, agentRS("a1", 1, "web", 8080, 100, fsm.Draining))

			h.clock.advance(5 * time.Second)
			h.reconcile()
			h.expect("web", 1, 8080, agentRS("a1", 1, "web", 8080, 100, fsm.Draining))

			h.conns.set(addrOf(1).String(), 0)
			h.clock.advance(5 * time.Second)
			h.reconcile()
			h.expect("web", 1, 8080, nil)
			h.expect("web", 2, 8080, agentRS("a2", 2, "web", 8080, 100, fsm.Active))
		})
	}
}

func TestDrainEndsAtMaxDrainTime(t *testing.T) {
	tests := []struct {
		name    string
		counter bool
	}{
		{"connections never end", true},
		{"no connection counter", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) {
				if !tt.counter {
					c.Conns = nil
				}
			})
			h.conns.set(addrOf(1).String(), 7)
			a1 := agent("a1", 1, sp("web", 8080, 100))
			h.pool.set(a1)
			h.reconcile()
			h.pool.set(left(a1))
			h.reconcile()
			h.clock.advance(maxDrain - time.Second)
			h.reconcile()
			h.expect("web", 1, 8080, agentRS("a1", 1, "web", 8080, 100, fsm.Draining))
			h.clock.advance(time.Second)
			h.reconcile()
			h.expect("web", 1, 8080, nil)
		})
	}
}

func TestFailedAgentIsOutOfRotationAtOnceAndReapedAfterTheDelay(t *testing.T) {
	tests := []struct {
		name string
		gone func(*pool, gossip.Member)
	}{
		{"reported dead", func(p *pool, m gossip.Member) { p.set(dead(m)) }},
		{"absent from the pool", func(p *pool, m gossip.Member) { p.set() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.conns.set(addrOf(1).String(), 10) // a failed agent is reaped whatever its connections
			a1 := agent("a1", 1, sp("web", 8080, 100))
			h.pool.set(a1)
			h.reconcile()

			tt.gone(h.pool, a1)
			h.reconcile()
			h.expect("web", 1, 8080, agentRS("a1", 1, "web", 8080, 100, fsm.Draining))
			h.clock.advance(reapDelay - time.Second)
			h.reconcile()
			h.expect("web", 1, 8080, agentRS("a1", 1, "web", 8080, 100, fsm.Draining))
			h.clock.advance(time.Second)
			h.reconcile()
			h.expect("web", 1, 8080, nil)
		})
	}
}

func TestFlappingAgentComesBackBeforeTheReap(t *testing.T) {
	h := newHarness(t)
	a1 := agent("a1", 1, sp("web", 8080, 100))
	h.pool.set(a1)
	h.reconcile()

	h.pool.set(dead(a1))
	h.reconcile()
	h.expect("web", 1, 8080, agentRS("a1", 1, "web", 8080, 100, fsm.Draining))

	h.clock.advance(reapDelay / 2)
	h.pool.set(a1)
	h.reconcile()
	h.expect("web", 1, 8080, agentRS("a1", 1, "web", 8080, 100, fsm.Active))

	// Failing again later starts a fresh delay, not the old one.
	h.clock.advance(reapDelay / 2)
	h.pool.set(dead(a1))
	h.reconcile()
	h.clock.advance(reapDelay / 2)
	h.reconcile()
	h.expect("web", 1, 8080, agentRS("a1", 1, "web", 8080, 100, fsm.Draining))
}

func TestOperatorRealServersAreNeverTouched(t *testing.T) {
	h := newHarness(t)
	taken := fsm.RealServer{Service: "web", Addr: addrOf(1), Port: 8080, Weight: 3}
	other := fsm.RealServer{Service: "web", Addr: addrOf(9), Port: 80, Weight: 4}
	h.c.must(t, fsm.AddRealServer{RealServer: taken})
	h.c.must(t, fsm.AddRealServer{RealServer: other})
	operator := func(rs fsm.RealServer) *fsm.RealServer {
		rs.Origin, rs.Admin, rs.Health = fsm.OriginOperator, fsm.Active, fsm.HealthUnknown
		return &rs
	}

	// a1 announces the operator's key and another service; a9 shares the other
	// operator real server's address but is gone.
	h.pool.set(agent("a1", 1, sp("web", 8080, 100), sp("dns", 53, 1)), dead(agent("a9", 9, sp("web", 80, 1))))
	for range 3 {
		h.reconcile()
		h.clock.advance(reapDelay)
	}
	h.expect("web", 1, 8080, operator(taken))
	h.expect("web", 9, 80, operator(other))
	h.expect("dns", 1, 53, agentRS("a1", 1, "dns", 53, 1, fsm.Active))
	if n := strings.Count(h.logs.String(), "belongs to someone else"); n != 1 {
		t.Errorf("the taken key was logged %d times, want once:\n%s", n, h.logs)
	}
}

func TestUnknownServiceIsSkippedAndLoggedOnce(t *testing.T) {
	h := newHarness(t)
	h.pool.set(agent("a1", 1, sp("nope", 80, 1), sp("web", 8080, 100)))
	h.reconcile()
	h.reconcile()
	h.expect("web", 1, 8080, agentRS("a1", 1, "web", 8080, 100, fsm.Active))
	if n := strings.Count(h.logs.String(), "does not exist"); n != 1 {
		t.Errorf("unknown service logged %d times, want once:\n%s", n, h.logs)
	}
}

func TestRefusedWriteDoesNotBlockTheOthers(t *testing.T) {
	h := newHarness(t)
	// A DR real server must use the service's port: the state refuses 8443.
	h.pool.set(agent("a1", 1, sp("dr", 8443, 1)), agent("a2", 2, sp("web", 8080, 100)))
	h.reconcile()
	h.reconcile()
	h.expect("dr", 1, 8443, nil)
	h.expect("web", 2, 8080, agentRS("a2", 2, "web", 8080, 100, fsm.Active))
	if n := strings.Count(h.logs.String(), "the state refuses"); n != 1 {
		t.Errorf("refused write logged %d times, want once:\n%s", n, h.logs)
	}
}

func TestFailedWriteIsRetriedByTheNextPass(t *testing.T) {
	h := newHarness(t)
	h.pool.set(agent("a1", 1, sp("web", 8080, 100)))
	notLeader := errors.New("node is not the leader")
	h.c.failing = notLeader
	if err := h.r.Reconcile(context.Background()); !errors.Is(err, notLeader) {
		t.Fatalf("Reconcile = %v, want the write error", err)
	}
	h.c.failing = nil
	h.reconcile()
	h.expect("web", 1, 8080, agentRS("a1", 1, "web", 8080, 100, fsm.Active))
}

func TestUnreadableMetaLeavesRealServersAlone(t *testing.T) {
	h := newHarness(t)
	h.pool.set(agent("a1", 1, sp("web", 8080, 100)))
	h.reconcile()
	h.pool.set(gossip.Member{Name: "a1", State: gossip.StateAlive, MetaErr: gossip.ErrMetaVersion})
	for range 3 {
		h.clock.advance(reapDelay)
		h.reconcile()
	}
	h.expect("web", 1, 8080, agentRS("a1", 1, "web", 8080, 100, fsm.Active))
}

func TestStartUpReconcilesTheWholePool(t *testing.T) {
	const grace = 15 * time.Second
	h := newHarness(t, func(c *Config) { c.StartupGrace = grace })
	// What a previous leader left: agents that died while there was no leader.
	for id, n := range map[string]int{"gone": 20, "dead": 21} {
		h.c.must(t, fsm.UpsertAgentRS{RealServer: fsm.RealServer{Service: "web", Addr: addrOf(n), Port: 80, Weight: 1, Origin: fsm.AgentOrigin(id)}})
	}
	var members []gossip.Member
	for i := 1; i <= 5; i++ {
		members = append(members, agent(fmt.Sprintf("a%d", i), i, sp("web", 80, 10*i)))
	}
	h.pool.set(append(members, dead(agent("dead", 21, sp("web", 80, 1))))...)

	h.reconcile()
	for i := 1; i <= 5; i++ {
		h.expect("web", i, 80, agentRS(fmt.Sprintf("a%d", i), i, "web", 80, 10*i, fsm.Active))
	}
	h.expect("web", 21, 80, agentRS("dead", 21, "web", 80, 1, fsm.Draining))
	// An agent absent from a new leader's pool may not have rejoined yet.
	h.expect("web", 20, 80, agentRS("gone", 20, "web", 80, 1, fsm.Active))

	h.clock.advance(grace)
	h.reconcile()
	h.expect("web", 20, 80, agentRS("gone", 20, "web", 80, 1, fsm.Draining))
	h.clock.advance(reapDelay)
	h.reconcile()
	h.expect("web", 20, 80, nil)
	h.expect("web", 21, 80, nil)
	if n := h.c.count(); n != 5 {
		t.Fatalf("%d real servers, want the 5 live agents'", n)
	}
}

func TestRunReconcilesOnMembershipChanges(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Interval = time.Hour; c.Now = time.Now })
	h.pool.set(agent("a1", 1, sp("web", 8080, 100)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.r.Run(ctx) }()

	waitFor(t, "start-up pass", func() bool { _, ok := h.c.rs(t, "web", addrOf(1).String(), 8080); return ok })
	a2 := agent("a2", 2, sp("web", 8080, 100))
	h.pool.set(agent("a1", 1, sp("web", 8080, 100)), a2)
	h.pool.events <- gossip.Event{Type: gossip.EventJoin, Member: a2}
	waitFor(t, "pass after the join", func() bool { _, ok := h.c.rs(t, "web", addrOf(2).String(), 8080); return ok })

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestNewRequiresItsInputs(t *testing.T) {
	if _, err := New(Config{}); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("New(empty) = %v, want ErrBadConfig", err)
	}
}

// BenchmarkReconcileSteadyState measures a pass over 200 registered agents with nothing
// to write: the cost of the periodic pass and of every membership event.
func BenchmarkReconcileSteadyState(b *testing.B) {
	c := &cluster{st: fsm.NewState()}
	ctx := context.Background()
	if err := c.Apply(ctx, fsm.AddService{Service: fsm.Service{Name: "web", Protocol: fsm.TCP, VIP: netip.MustParseAddr("192.0.2.1"), Port: 80}}); err != nil {
		b.Fatal(err)
	}
	p := &pool{}
	for i := range 200 {
		p.members = append(p.members, gossip.Member{Name: fmt.Sprintf("a%d", i), State: gossip.StateAlive, Meta: gossip.Meta{
			Role: gossip.RoleAgent, ID: fmt.Sprintf("a%d", i), Addr: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}),
			Services: []gossip.ServicePort{{Service: "web", Port: 8080, Weight: 100}},
		}})
	}
	r, err := New(Config{Members: p, State: c, Writer: c, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Reconcile(ctx); err != nil {
		b.Fatal(err)
	}
	writes := c.writeCount()
	for b.Loop() {
		if err := r.Reconcile(ctx); err != nil {
			b.Fatal(err)
		}
	}
	if c.writeCount() != writes {
		b.Fatal("a steady-state pass wrote")
	}
}

func TestRunRegistersAsSoonAsTheServiceExists(t *testing.T) {
	changes := make(chan struct{}, 1)
	h := newHarness(t, func(c *Config) { c.Interval = time.Hour; c.Now = time.Now; c.StateChanges = changes })
	h.pool.set(agent("a1", 1, sp("web", 8080, 5), sp("api", 9000, 5)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.r.Run(ctx)

	// The agent also serves a service the cluster does not have yet: only web registers.
	waitFor(t, "start-up pass", func() bool { _, ok := h.c.rs(t, "web", addrOf(1).String(), 8080); return ok })
	h.c.must(t, fsm.AddService{Service: fsm.Service{Name: "api", Protocol: fsm.TCP, VIP: netip.MustParseAddr("192.0.2.20"), Port: 9000}})
	changes <- struct{}{}
	waitFor(t, "registration after the service was added", func() bool {
		_, ok := h.c.rs(t, "api", addrOf(1).String(), 9000)
		return ok
	})
}

func TestDrainLastsAtLeastMinDrainEvenWithoutConnections(t *testing.T) {
	h := newHarness(t)
	a1 := agent("a1", 1, sp("web", 8080, 100))
	h.pool.set(a1)
	h.reconcile()

	h.pool.set(left(a1))
	h.conns.set(addrOf(1).String(), 0)
	h.reconcile() // drains
	h.reconcile() // at once again (a state change triggers a pass): the directors may not have weight 0 yet
	h.expect("web", 1, 8080, agentRS("a1", 1, "web", 8080, 100, fsm.Draining))

	h.clock.advance(DefaultMinDrain)
	h.reconcile()
	h.expect("web", 1, 8080, nil)
}

// watcher is a state-change signal the test fires by hand.
type watcher struct{ ch chan struct{} }

func (w *watcher) Watch() (<-chan struct{}, func()) { return w.ch, func() {} }

func TestLeadStartsEachTermWithFreshDrainTimers(t *testing.T) {
	h := newHarness(t)
	h.pool.set(agent("rs1", 1, sp("web", 0, 5)))
	h.reconcile() // registered by an earlier leader
	h.pool.set(left(agent("rs1", 1, sp("web", 0, 5))))

	w := &watcher{ch: make(chan struct{})}
	term := func(t *testing.T) (pass func(), end func()) {
		cfg := h.r.cfg
		cfg.Interval = time.Hour // passes only when the test signals a change
		ctx, cancel := context.WithCancel(context.Background())
		started, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			if err := Lead(cfg, w)(ctx, func() { close(started) }); err != nil {
				t.Errorf("Lead: %v", err)
			}
		}()
		<-started
		// The first pass runs at once; each signal is one more. The second send is taken
		// only once the loop is back waiting, so the pass of the first is done (the one
		// the second starts may overlap what follows: it sees the same or a later clock).
		return func() { w.ch <- struct{}{}; w.ch <- struct{}{} }, func() { cancel(); <-done }
	}

	pass, end := term(t)
	pass()
	h.expect("web", 1, 80, agentRS("rs1", 1, "web", 80, 5, fsm.Draining))
	h.clock.advance(maxDrain - time.Second)
	end()

	// A new term, almost a MaxDrain later: its drain starts now, not at the first term's.
	pass, end = term(t)
	defer end()
	pass()
	h.clock.advance(2 * time.Second)
	pass()
	h.expect("web", 1, 80, agentRS("rs1", 1, "web", 80, 5, fsm.Draining))
	h.clock.advance(maxDrain)
	pass()
	h.expect("web", 1, 80, nil)
}
