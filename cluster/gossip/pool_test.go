package gossip

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

// detectionBound bounds the polls that wait for a failure or a leave to be reported. It
// is a deadline for a hung test, not an assertion on speed: the elapsed time is logged.
const detectionBound = 15 * time.Second

func testConfig() Config {
	return Config{
		BindAddr:  "127.0.0.1",
		SecretKey: testKey,
		Label:     "raftlvs-test",
		// memberlist goroutines may log after a test ends; t.Log would panic then.
		Logger: slog.New(slog.DiscardHandler),
	}
}

func startPool(t testing.TB, cfg Config, meta Meta) *Pool {
	t.Helper()
	p, err := New(cfg, meta)
	if err != nil {
		t.Fatalf("New(%s): %v", meta.ID, err)
	}
	t.Cleanup(func() {
		if err := p.Shutdown(); err != nil {
			t.Errorf("Shutdown(%s): %v", meta.ID, err)
		}
	})
	return p
}

func director(id string) Meta {
	return Meta{Role: RoleDirector, ID: id, APIAddr: "127.0.0.1:8080"}
}

func agent(id string, n int) Meta {
	return Meta{
		Role:     RoleAgent,
		ID:       id,
		Addr:     netip.AddrFrom4([4]byte{10, 0, byte(n >> 8), byte(n)}),
		Services: []ServicePort{{Service: "web", Port: 80, Weight: 100}},
	}
}

func join(t testing.TB, p *Pool, to ...*Pool) {
	t.Helper()
	var addrs []string
	for _, o := range to {
		addrs = append(addrs, o.LocalAddr().String())
	}
	if _, err := p.Join(addrs); err != nil {
		t.Fatalf("Join: %v", err)
	}
}

func member(p *Pool, name string) (Member, bool) {
	for _, m := range p.Members() {
		if m.Name == name {
			return m, true
		}
	}
	return Member{}, false
}

// waitFor polls cond until it holds or bound passes, and returns how long it took.
func waitFor(t testing.TB, bound time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > bound {
			t.Fatalf("%s: not within %v", what, bound)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// nextEvent returns the next event of p about name, skipping others.
func nextEvent(t testing.TB, p *Pool, name string) Event {
	t.Helper()
	deadline := time.After(detectionBound)
	for {
		select {
		case e, ok := <-p.Events():
			if !ok {
				t.Fatalf("events closed while waiting for %s", name)
			}
			if e.Member.Name == name || e.Type == EventResync {
				return e
			}
		case <-deadline:
			t.Fatalf("no event about %s within %v", name, detectionBound)
		}
	}
}

func TestMembersSeeEachOtherWithMeta(t *testing.T) {
	d1 := startPool(t, testConfig(), director("d1"))
	a1 := startPool(t, testConfig(), agent("a1", 1))
	a2 := startPool(t, testConfig(), agent("a2", 2))
	join(t, a1, d1)
	join(t, a2, d1)

	for _, p := range []*Pool{d1, a1, a2} {
		waitFor(t, detectionBound, "every member sees three", func() bool { return len(p.Members()) == 3 })
	}
	want := map[string]Meta{"d1": director("d1"), "a1": agent("a1", 1), "a2": agent("a2", 2)}
	for _, p := range []*Pool{d1, a1, a2} {
		for _, m := range p.Members() {
			if m.State != StateAlive || m.MetaErr != nil || !reflect.DeepEqual(m.Meta, want[m.Name]) {
				t.Errorf("%s sees %+v, want alive with meta %+v", p.cfg.NodeName, m, want[m.Name])
			}
		}
		if m, _ := member(d1, p.cfg.NodeName); m.Addr != p.LocalAddr() {
			t.Errorf("d1 sees %s at %v, it is at %v", p.cfg.NodeName, m.Addr, p.LocalAddr())
		}
	}
	if e := nextEvent(t, d1, "a2"); e.Type != EventJoin || !reflect.DeepEqual(e.Member.Meta, want["a2"]) {
		t.Errorf("d1's event about a2 = %+v, want a join with its meta", e)
	}
}

func TestForeignMemberIsRefused(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
	}{
		{"wrong key", func(c *Config) { c.SecretKey = []byte("another key of 32 bytes, really!") }},
		{"wrong label", func(c *Config) { c.Label = "another-cluster" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d1 := startPool(t, testConfig(), director("d1"))
			a1 := startPool(t, testConfig(), agent("a1", 1))
			join(t, a1, d1)

			cfg := testConfig()
			tt.modify(&cfg)
			intruder := startPool(t, cfg, agent("intruder", 9))
			if _, err := intruder.Join([]string{d1.LocalAddr().String(), a1.LocalAddr().String()}); err == nil {
				t.Fatal("Join with a foreign config succeeded")
			}
			// A member that joins after the intruder's attempt is the sync point: once
			// everyone lists it, gossip about the intruder would have arrived too.
			a2 := startPool(t, testConfig(), agent("a2", 2))
			join(t, a2, a1)
			for _, p := range []*Pool{d1, a1, a2} {
				waitFor(t, detectionBound, "a2 seen", func() bool { _, ok := member(p, "a2"); return ok })
				if m, ok := member(p, "intruder"); ok {
					t.Errorf("%s lists the intruder: %+v", p.cfg.NodeName, m)
				}
			}
			if n := len(intruder.Members()); n != 1 {
				t.Errorf("intruder sees %d members, want only itself", n)
			}
		})
	}
}

func TestOversizedMetaIsRefused(t *testing.T) {
	huge := agent("a1", 1)
	for i := range 40 {
		huge.Services = append(huge.Services, ServicePort{Service: fmt.Sprintf("a-long-service-name-%02d", i), Port: 80})
	}
	if _, err := New(testConfig(), huge); !errors.Is(err, ErrMetaTooLarge) {
		t.Fatalf("New with %d services = %v, want ErrMetaTooLarge", len(huge.Services), err)
	}

	d1 := startPool(t, testConfig(), director("d1"))
	a1 := startPool(t, testConfig(), agent("a1", 1))
	join(t, a1, d1)
	waitFor(t, detectionBound, "d1 sees a1", func() bool { _, ok := member(d1, "a1"); return ok })

	if err := a1.UpdateMeta(huge, time.Second); !errors.Is(err, ErrMetaTooLarge) {
		t.Fatalf("UpdateMeta oversized = %v, want ErrMetaTooLarge", err)
	}
	changed := agent("a1", 1)
	changed.Services[0].Weight = 7
	if err := a1.UpdateMeta(changed, time.Second); err != nil {
		t.Fatalf("UpdateMeta after a refusal: %v", err)
	}
	waitFor(t, detectionBound, "d1 sees the new weight", func() bool {
		m, _ := member(d1, "a1")
		return reflect.DeepEqual(m.Meta, changed)
	})
	for {
		e := nextEvent(t, d1, "a1")
		if e.Type == EventUpdate {
			if !reflect.DeepEqual(e.Member.Meta, changed) {
				t.Fatalf("update event carries %+v, want %+v", e.Member.Meta, changed)
			}
			break
		}
	}
}

func TestUpdateMetaRefusesAnotherID(t *testing.T) {
	a1 := startPool(t, testConfig(), agent("a1", 1))
	if err := a1.UpdateMeta(agent("a2", 1), time.Second); !errors.Is(err, ErrBadMeta) {
		t.Fatalf("UpdateMeta with another id = %v, want ErrBadMeta", err)
	}
}

func TestDepartureIsReported(t *testing.T) {
	tests := []struct {
		name      string
		depart    func(*Pool) error
		wantState memberlist.NodeStateType
		wantEvent EventType
	}{
		{"killed member fails", func(p *Pool) error { return p.Shutdown() }, StateDead, EventFail},
		{"graceful leave is left", func(p *Pool) error { return p.Leave(time.Second) }, StateLeft, EventLeave},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d1 := startPool(t, testConfig(), director("d1"))
			d2 := startPool(t, testConfig(), director("d2"))
			a1 := startPool(t, testConfig(), agent("a1", 1))
			join(t, d2, d1)
			join(t, a1, d1, d2)
			for _, p := range []*Pool{d1, d2} {
				waitFor(t, detectionBound, "a1 seen", func() bool { m, ok := member(p, "a1"); return ok && m.State == StateAlive })
			}
			for e := nextEvent(t, d1, "a1"); e.Type != EventJoin; e = nextEvent(t, d1, "a1") {
			}

			if err := tt.depart(a1); err != nil {
				t.Fatal(err)
			}
			took := waitFor(t, detectionBound, "departure reported", func() bool {
				m, _ := member(d1, "a1")
				return m.State != StateAlive
			})
			t.Logf("%v reported after %v (probe %v, timeout %v, suspicion ×%d)", tt.wantEvent, took,
				DefaultProbeInterval, DefaultProbeTimeout, DefaultSuspicionMult)
			m, _ := member(d1, "a1")
			if m.State != tt.wantState {
				t.Errorf("d1 reports a1 in state %d, want %d", m.State, tt.wantState)
			}
			if !reflect.DeepEqual(m.Meta, agent("a1", 1)) {
				t.Errorf("departed member keeps meta %+v, want its last announcement", m.Meta)
			}
			e := nextEvent(t, d1, "a1")
			for e.Type == EventUpdate { // the leaving announcement
				e = nextEvent(t, d1, "a1")
			}
			if e.Type != tt.wantEvent {
				t.Errorf("event %v, want %v", e.Type, tt.wantEvent)
			}
		})
	}
}

func TestConfigJoinJoinsInTheBackground(t *testing.T) {
	d1 := startPool(t, testConfig(), director("d1"))
	cfg := testConfig()
	cfg.Join = []string{d1.LocalAddr().String()}
	startPool(t, cfg, agent("a1", 1))
	waitFor(t, detectionBound, "d1 sees a1", func() bool { _, ok := member(d1, "a1"); return ok })
}

func TestCallsAfterShutdown(t *testing.T) {
	p, err := New(testConfig(), agent("a1", 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := p.Shutdown(); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	if _, ok := <-p.Events(); ok {
		t.Error("Events not closed by Shutdown")
	}
	if err := p.Leave(time.Second); !errors.Is(err, ErrShutdown) { // memberlist itself would panic
		t.Errorf("Leave after Shutdown = %v, want ErrShutdown", err)
	}
	if err := p.UpdateMeta(agent("a1", 1), time.Second); !errors.Is(err, ErrShutdown) {
		t.Errorf("UpdateMeta after Shutdown = %v, want ErrShutdown", err)
	}
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
	}{
		{"no key", func(c *Config) { c.SecretKey = nil }},
		{"key of 20 bytes", func(c *Config) { c.SecretKey = make([]byte, 20) }},
		{"node name differs from meta id", func(c *Config) { c.NodeName = "other" }},
		{"bind address not an IP", func(c *Config) { c.BindAddr = "localhost" }},
		{"join address without port", func(c *Config) { c.Join = []string{"10.0.0.1"} }},
		{"probe timeout not below interval", func(c *Config) { c.ProbeTimeout = time.Second; c.ProbeInterval = time.Second }},
		{"label too long", func(c *Config) { c.Label = string(bytes.Repeat([]byte("x"), 256)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			tt.modify(&cfg)
			p, err := New(cfg, agent("a1", 1))
			if err == nil {
				p.Shutdown()
			}
			if !errors.Is(err, ErrBadConfig) {
				t.Fatalf("New = %v, want ErrBadConfig", err)
			}
		})
	}
}

func TestDecodeSecretKey(t *testing.T) {
	tests := []struct {
		name, in string
		wantLen  int
	}{
		{"32 bytes", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", 32},
		{"16 bytes", "MDEyMzQ1Njc4OWFiY2RlZg==", 16},
		{"not base64", "not base64!", 0},
		{"10 bytes", "MDEyMzQ1Njc4OQ==", 0},
		{"empty", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := DecodeSecretKey(tt.in)
			if tt.wantLen == 0 {
				if !errors.Is(err, ErrBadKey) {
					t.Fatalf("DecodeSecretKey = %v, want ErrBadKey", err)
				}
				return
			}
			if err != nil || len(key) != tt.wantLen {
				t.Fatalf("DecodeSecretKey = %d bytes, %v; want %d bytes", len(key), err, tt.wantLen)
			}
		})
	}
}
