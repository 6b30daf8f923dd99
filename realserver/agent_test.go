package realserver

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

type fakeSource struct {
	mu       sync.Mutex
	services map[string]fsm.Service
	err      error // every call fails with it when set
	calls    int
}

func (s *fakeSource) Service(_ context.Context, name string) (fsm.Service, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.err != nil {
		return fsm.Service{}, s.err
	}
	svc, ok := s.services[name]
	if !ok {
		return fsm.Service{}, fmt.Errorf("service %s: %w", name, fsm.ErrNotFound)
	}
	return svc, nil
}

func (s *fakeSource) set(f func(s *fakeSource)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *fakeSource) callCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

type fakeMembers struct {
	mu      sync.Mutex
	events  []string
	ready   chan struct{}
	onLeave func()
}

func newFakeMembers() *fakeMembers { return &fakeMembers{ready: make(chan struct{})} }

func (m *fakeMembers) SetDraining(d bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, fmt.Sprintf("draining=%v", d))
	if !d {
		close(m.ready)
	}
	return nil
}

func (m *fakeMembers) Leave(time.Duration) error {
	if m.onLeave != nil {
		m.onLeave()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, "leave")
	return nil
}

func (m *fakeMembers) Events() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.events)
}

// fakeView reports drained from the n-th question on (never if n < 0).
type fakeView struct {
	mu        sync.Mutex
	asked     int
	drainedAt int
}

func (v *fakeView) Drained(context.Context, string, string, netip.Addr) (bool, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.asked++
	return v.drainedAt >= 0 && v.asked >= v.drainedAt, nil
}

// eventually polls cond every millisecond for at most five seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

type agentRig struct {
	host    *FakeHost
	source  *fakeSource
	members *fakeMembers
	view    *fakeView
	cfg     Config
	before  map[string]int
}

func newRig(t *testing.T, services map[string]fsm.Service) *agentRig {
	h := NewFakeHost("eth0")
	h.PutAddr("eth0", Address{Prefix: netip.MustParsePrefix("192.0.2.10/24")})
	r := &agentRig{
		host:    h,
		source:  &fakeSource{services: services},
		members: newFakeMembers(),
		view:    &fakeView{drainedAt: 2},
		before:  h.Sysctls(),
		cfg: Config{
			ID: "rs1", Addr: netip.MustParseAddr("192.0.2.10"),
			Services:  []ServiceSpec{{Name: "web", Weight: 1}},
			StateFile: statePath(t), PollInterval: 5 * time.Millisecond, RetryMin: time.Millisecond,
			DrainTimeout: 5 * time.Second, Logger: quiet,
		},
	}
	return r
}

// start runs the agent until the test cancels it; the returned func stops it and returns
// what Run returned.
func (r *agentRig) start(t *testing.T) func() error {
	t.Helper()
	a, err := NewAgent(r.cfg, Deps{Host: r.host, Services: r.source, Registrations: r.view, Members: r.members})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("agent did not stop")
			return nil
		}
	}
	t.Cleanup(func() { stop() })
	return stop
}

func (r *agentRig) waitReady(t *testing.T) {
	t.Helper()
	select {
	case <-r.members.ready:
	case <-time.After(5 * time.Second):
		t.Fatal("agent never announced it was ready")
	}
}

func svc(vip string, method fsm.Forwarding) fsm.Service {
	s := webService
	s.VIP = netip.MustParseAddr(vip)
	s.Forwarding = method
	return s
}

func TestAgentIsReadyOnlyOnceConfiguredAndStopsByDrainLeaveUndo(t *testing.T) {
	r := newRig(t, map[string]fsm.Service{"web": svc("192.0.2.100", fsm.DR)})
	var vipAtLeave bool
	r.members.onLeave = func() { vipAtLeave = hasAddr(t, r.host, "lo", "192.0.2.100/32") }
	stop := r.start(t)
	r.waitReady(t)
	if !hasAddr(t, r.host, "lo", "192.0.2.100/32") {
		t.Fatal("announced ready before the VIP was on lo")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got, want := r.members.Events(), []string{"draining=false", "draining=true", "leave"}; !slices.Equal(got, want) {
		t.Errorf("membership events %q, want %q", got, want)
	}
	if r.view.asked < 2 {
		t.Errorf("left after asking %d times; the directors showed the drain on the 2nd", r.view.asked)
	}
	if !vipAtLeave {
		t.Error("the VIP was gone before the agent left the pool: drained connections would break")
	}
	if hasAddr(t, r.host, "lo", "192.0.2.100/32") || !maps.Equal(r.host.Sysctls(), r.before) {
		t.Errorf("host not restored: lo VIP present %v, sysctls %v", hasAddr(t, r.host, "lo", "192.0.2.100/32"), r.host.Sysctls())
	}
}

func TestAgentLeavesAfterTheDrainTimeout(t *testing.T) {
	r := newRig(t, map[string]fsm.Service{"web": svc("192.0.2.100", fsm.DR)})
	r.view.drainedAt = -1
	r.cfg.DrainTimeout = 20 * time.Millisecond
	stop := r.start(t)
	r.waitReady(t)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if ev := r.members.Events(); ev[len(ev)-1] != "leave" {
		t.Errorf("events %q: did not leave after the drain timeout", ev)
	}
}

func TestAgentFollowsServiceChanges(t *testing.T) {
	r := newRig(t, map[string]fsm.Service{"web": svc("192.0.2.100", fsm.DR)})
	r.start(t)
	r.waitReady(t)
	r.source.set(func(s *fakeSource) { s.services["web"] = svc("192.0.2.101", fsm.TUN) })
	eventually(t, "the VIP moved to tunl0", func() bool {
		return hasAddr(t, r.host, IPIPLink, "192.0.2.101/32") && !hasAddr(t, r.host, "lo", "192.0.2.100/32")
	})
	r.source.set(func(s *fakeSource) { delete(s.services, "web") })
	eventually(t, "the deleted service's VIP is gone", func() bool {
		exists, _ := r.host.LinkUp(IPIPLink)
		return !exists && maps.Equal(r.host.Sysctls(), r.before)
	})
}

func TestAgentRepairsDrift(t *testing.T) {
	r := newRig(t, map[string]fsm.Service{"web": svc("192.0.2.100", fsm.DR)})
	r.start(t)
	r.waitReady(t)
	r.host.DropAddr("lo", netip.MustParsePrefix("192.0.2.100/32"))
	r.host.SetSysctl(confPath("eth0", "arp_announce"), 0)
	eventually(t, "the VIP and arp_announce are back", func() bool {
		return hasAddr(t, r.host, "lo", "192.0.2.100/32") && r.host.Sysctls()[confPath("eth0", "arp_announce")] == 2
	})
}

func TestAgentRestartedWhileTheClusterIsUnreachableKeepsItsVIPs(t *testing.T) {
	r := newRig(t, map[string]fsm.Service{"web": svc("192.0.2.100", fsm.DR)})
	// A previous run configured the host and crashed.
	prev := newConfigurator(t, r.host, r.cfg.StateFile)
	if err := prev.Converge([]Binding{dr("192.0.2.100")}); err != nil {
		t.Fatal(err)
	}
	r.source.set(func(s *fakeSource) { s.err = ErrNoDirector })
	r.start(t)
	eventually(t, "the agent retried a few times", func() bool { return r.source.callCount() >= 5 })
	if !hasAddr(t, r.host, "lo", "192.0.2.100/32") {
		t.Fatal("the VIP was removed while no director could say whether it is still wanted")
	}
	select {
	case <-r.members.ready:
		t.Fatal("announced ready without having heard from the cluster")
	default:
	}
	r.source.set(func(s *fakeSource) { s.err = nil })
	r.waitReady(t)
}

func TestAgentWithAnUnconfigurableServiceStaysOutOfRotation(t *testing.T) {
	r := newRig(t, map[string]fsm.Service{"web": svc("192.0.2.100", fsm.TUN)})
	r.host.NoIPIP = true
	r.start(t)
	eventually(t, "the agent tried a few rounds", func() bool { return r.source.callCount() >= 5 })
	select {
	case <-r.members.ready:
		t.Fatal("announced ready although tunl0 cannot exist")
	default:
	}
}

func TestNewAgentValidatesConfig(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config)
		want   error
	}{
		{name: "empty id", change: func(c *Config) { c.ID = "" }, want: ErrBadSpec},
		{name: "id with a slash", change: func(c *Config) { c.ID = "rs/1" }, want: ErrBadSpec},
		{name: "no address", change: func(c *Config) { c.Addr = netip.Addr{} }, want: ErrBadSpec},
		{name: "loopback address", change: func(c *Config) { c.Addr = netip.MustParseAddr("127.0.0.1") }, want: ErrBadSpec},
		{name: "no services", change: func(c *Config) { c.Services = nil }, want: ErrBadSpec},
		{name: "weight too high", change: func(c *Config) { c.Services[0].Weight = 70000 }, want: ErrBadSpec},
		{name: "service twice", change: func(c *Config) { c.Services = append(c.Services, c.Services[0]) }, want: ErrBadSpec},
		{name: "no state file", change: func(c *Config) { c.StateFile = "" }, want: ErrBadSpec},
		{name: "negative poll interval", change: func(c *Config) { c.PollInterval = -time.Second }, want: ErrBadSpec},
		{name: "no interface holds the address", change: func(c *Config) { c.Addr = netip.MustParseAddr("198.51.100.1") }, want: ErrNoLink},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, nil)
			tt.change(&r.cfg)
			_, err := NewAgent(r.cfg, Deps{Host: r.host, Services: r.source, Members: r.members})
			if !errors.Is(err, tt.want) {
				t.Fatalf("want %v, got %v", tt.want, err)
			}
		})
	}
	r := newRig(t, nil)
	a, err := NewAgent(r.cfg, Deps{Host: r.host, Services: r.source, Members: r.members})
	if err != nil {
		t.Fatal(err)
	}
	if a.Interface() != "eth0" {
		t.Fatalf("interface %q; want eth0, found from the agent address", a.Interface())
	}
}
