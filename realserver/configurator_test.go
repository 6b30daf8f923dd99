package realserver

import (
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/raftlvs/raftlvs/fsm"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newConfigurator(t *testing.T, host Host, stateFile string) *Configurator {
	t.Helper()
	c, err := NewConfigurator(host, ConfiguratorConfig{Interface: "eth0", StateFile: stateFile, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func statePath(t testing.TB) string { return filepath.Join(t.TempDir(), "agent.state") }

func dr(vip string) Binding  { return Binding{VIP: netip.MustParseAddr(vip), Method: fsm.DR} }
func tun(vip string) Binding { return Binding{VIP: netip.MustParseAddr(vip), Method: fsm.TUN} }
func nat(vip string) Binding { return Binding{VIP: netip.MustParseAddr(vip), Method: fsm.NAT} }

func hasAddr(t *testing.T, h *FakeHost, link, prefix string) bool {
	t.Helper()
	addrs, err := h.Addrs(link)
	if errors.Is(err, ErrNoLink) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(addrs, func(a Address) bool { return a.Prefix == netip.MustParsePrefix(prefix) })
}

func opIndex(t *testing.T, ops []string, op string) int {
	t.Helper()
	i := slices.Index(ops, op)
	if i < 0 {
		t.Fatalf("operation %q missing from %q", op, ops)
	}
	return i
}

func assertOps(t *testing.T, h *FakeHost, want ...string) {
	t.Helper()
	if got := h.Ops(); !slices.Equal(got, want) {
		t.Fatalf("operations:\n got %q\nwant %q", got, want)
	}
}

func TestConvergeDRRaisesARPSysctlsOnAllAndInterfaceBeforeTheVIP(t *testing.T) {
	h := NewFakeHost("eth0")
	c := newConfigurator(t, h, statePath(t))
	if err := c.Converge([]Binding{dr("192.0.2.100")}); err != nil {
		t.Fatal(err)
	}
	ops := h.Ops()
	add := opIndex(t, ops, "add lo 192.0.2.100/32 scope host label lo:raftlvs")
	for _, w := range []string{
		"write net/ipv4/conf/all/arp_ignore=1", "write net/ipv4/conf/all/arp_announce=2",
		"write net/ipv4/conf/eth0/arp_ignore=1", "write net/ipv4/conf/eth0/arp_announce=2",
	} {
		if opIndex(t, ops, w) > add {
			t.Errorf("%q came after the VIP was added: %q", w, ops)
		}
	}
	if len(ops) != 5 {
		t.Errorf("want 4 sysctl writes and 1 address, got %q", ops)
	}
}

func TestConvergeTUNBringsUpTunl0RelaxesStrictRPFilterThenAddsTheVIP(t *testing.T) {
	h := NewFakeHost("eth0")
	// A distribution that turns on strict reverse path filtering for every interface.
	for _, l := range []string{"all", "default", "eth0"} {
		h.SetSysctl(confPath(l, "rp_filter"), 1)
	}
	c := newConfigurator(t, h, statePath(t))
	if err := c.Converge([]Binding{tun("192.0.2.100")}); err != nil {
		t.Fatal(err)
	}
	assertOps(t, h,
		"create tunl0", "up tunl0",
		"write net/ipv4/conf/all/arp_ignore=1", "write net/ipv4/conf/all/arp_announce=2",
		"write net/ipv4/conf/eth0/arp_ignore=1", "write net/ipv4/conf/eth0/arp_announce=2",
		"write net/ipv4/conf/all/rp_filter=0", "write net/ipv4/conf/tunl0/rp_filter=0",
		"add tunl0 192.0.2.100/32 scope host label tunl0:raftlvs",
	)
	if _, up := h.LinkUp(IPIPLink); !up {
		t.Error("tunl0 is not up")
	}
	if got := h.Sysctls()[confPath("eth0", "rp_filter")]; got != 1 {
		t.Errorf("eth0 rp_filter changed to %d; only all and tunl0 need relaxing", got)
	}
}

func TestConvergeTUNKeepsLooseRPFilter(t *testing.T) {
	h := NewFakeHost("eth0")
	for _, l := range []string{"all", "default"} {
		h.SetSysctl(confPath(l, "rp_filter"), 2)
	}
	c := newConfigurator(t, h, statePath(t))
	if err := c.Converge([]Binding{tun("192.0.2.100")}); err != nil {
		t.Fatal(err)
	}
	s := h.Sysctls()
	if s[confPath("all", "rp_filter")] != 2 || s[confPath(IPIPLink, "rp_filter")] != 2 {
		t.Errorf("loose rp_filter (2) already passes decapsulated packets and must stay: %v", s)
	}
}

func TestConvergeNATChangesNothing(t *testing.T) {
	h := NewFakeHost("eth0")
	state := statePath(t)
	c := newConfigurator(t, h, state)
	if err := c.Converge([]Binding{nat("192.0.2.100"), nat("2001:db8::100")}); err != nil {
		t.Fatal(err)
	}
	assertOps(t, h)
	if _, err := os.Stat(state); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("NAT wrote a state file: %v", err)
	}
}

func TestConvergeIPv6DRAddsNodadVIPWithoutARPSysctls(t *testing.T) {
	h := NewFakeHost("eth0")
	c := newConfigurator(t, h, statePath(t))
	if err := c.Converge([]Binding{dr("2001:db8::100")}); err != nil {
		t.Fatal(err)
	}
	assertOps(t, h, "add lo 2001:db8::100/128 nodad")
}

func TestConvergeIPv6TUNIsUnsupportedButTheRestIsConfigured(t *testing.T) {
	h := NewFakeHost("eth0")
	c := newConfigurator(t, h, statePath(t))
	err := c.Converge([]Binding{tun("2001:db8::100"), dr("192.0.2.100")})
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("want ErrUnsupported, got %v", err)
	}
	if !hasAddr(t, h, "lo", "192.0.2.100/32") {
		t.Error("the DR binding beside the unsupported one was not configured")
	}
}

func TestConvergeNeverLowersAStricterOperatorValue(t *testing.T) {
	h := NewFakeHost("eth0")
	h.SetSysctl(confPath("all", "arp_ignore"), 2)    // stricter than DR needs
	h.SetSysctl(confPath("eth0", "arp_announce"), 2) // exactly what DR needs
	before := h.Sysctls()
	c := newConfigurator(t, h, statePath(t))
	if err := c.Converge([]Binding{dr("192.0.2.100")}); err != nil {
		t.Fatal(err)
	}
	assertOps(t, h,
		"write net/ipv4/conf/all/arp_announce=2", "write net/ipv4/conf/eth0/arp_ignore=1",
		"add lo 192.0.2.100/32 scope host label lo:raftlvs")
	if err := c.Undo(); err != nil {
		t.Fatal(err)
	}
	if got := h.Sysctls(); !maps.Equal(got, before) {
		t.Errorf("after undo sysctls are %v, want %v", got, before)
	}
}

func TestUndoRemovesTheVIPThenRestoresRecordedOriginalsInReverse(t *testing.T) {
	h := NewFakeHost("eth0")
	h.SetSysctl(confPath("all", "arp_announce"), 1)
	h.PutAddr("eth0", Address{Prefix: netip.MustParsePrefix("192.0.2.10/24")})
	before := h.Sysctls()
	state := statePath(t)
	c := newConfigurator(t, h, state)
	if err := c.Converge([]Binding{dr("192.0.2.100")}); err != nil {
		t.Fatal(err)
	}
	h.ResetOps()
	if err := c.Undo(); err != nil {
		t.Fatal(err)
	}
	assertOps(t, h,
		"del lo 192.0.2.100/32",
		"write net/ipv4/conf/eth0/arp_announce=0", "write net/ipv4/conf/eth0/arp_ignore=0",
		"write net/ipv4/conf/all/arp_announce=1", "write net/ipv4/conf/all/arp_ignore=0",
	)
	if got := h.Sysctls(); !maps.Equal(got, before) {
		t.Errorf("after undo sysctls are %v, want %v", got, before)
	}
	if !hasAddr(t, h, "eth0", "192.0.2.10/24") {
		t.Error("undo touched an address the agent did not add")
	}
	if _, err := os.Stat(state); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file left after a complete undo: %v", err)
	}
}

func TestUndoPutsTunl0BackAsItWas(t *testing.T) {
	tests := []struct {
		name           string
		setup          func(h *FakeHost)
		exists, wantUp bool
	}{
		{name: "created by the agent: removed", setup: func(*FakeHost) {}, exists: false},
		{name: "there but down (ipip loaded): down again", setup: func(h *FakeHost) { h.AddIPIP() }, exists: true, wantUp: false},
		{name: "there and up: stays up", setup: func(h *FakeHost) { h.AddIPIP(); h.EnsureIPIP() }, exists: true, wantUp: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewFakeHost("eth0")
			tt.setup(h)
			c := newConfigurator(t, h, statePath(t))
			if err := c.Converge([]Binding{tun("192.0.2.100")}); err != nil {
				t.Fatal(err)
			}
			if err := c.Undo(); err != nil {
				t.Fatal(err)
			}
			exists, up := h.LinkUp(IPIPLink)
			if exists != tt.exists || up != tt.wantUp {
				t.Errorf("after undo tunl0 exists=%v up=%v, want exists=%v up=%v", exists, up, tt.exists, tt.wantUp)
			}
			if hasAddr(t, h, IPIPLink, "192.0.2.100/32") {
				t.Error("undo left the VIP on tunl0")
			}
		})
	}
}

func TestUndoLeavesASysctlChangedByTheOperatorSinceTheAgent(t *testing.T) {
	h := NewFakeHost("eth0")
	c := newConfigurator(t, h, statePath(t))
	if err := c.Converge([]Binding{dr("192.0.2.100")}); err != nil {
		t.Fatal(err)
	}
	h.SetSysctl(confPath("all", "arp_ignore"), 2)
	if err := c.Undo(); err != nil {
		t.Fatal(err)
	}
	if got := h.Sysctls()[confPath("all", "arp_ignore")]; got != 2 {
		t.Errorf("all/arp_ignore = %d; the operator's later 2 must stay", got)
	}
}

func TestRestartFromStateFileIsIdempotentAndKeepsOriginals(t *testing.T) {
	h := NewFakeHost("eth0")
	h.SetSysctl(confPath("eth0", "arp_announce"), 1)
	before := h.Sysctls()
	state := statePath(t)
	first := newConfigurator(t, h, state)
	if err := first.Converge([]Binding{dr("192.0.2.100")}); err != nil {
		t.Fatal(err)
	}
	// The agent crashes: no Undo. A new one starts from the state file.
	h.ResetOps()
	second := newConfigurator(t, h, state)
	if err := second.Converge([]Binding{dr("192.0.2.100")}); err != nil {
		t.Fatal(err)
	}
	assertOps(t, h) // the VIP is adopted, the sysctls are in place
	if err := second.Undo(); err != nil {
		t.Fatal(err)
	}
	if got := h.Sysctls(); !maps.Equal(got, before) {
		t.Errorf("originals lost across the restart: %v, want %v", got, before)
	}
	if hasAddr(t, h, "lo", "192.0.2.100/32") {
		t.Error("the VIP the first run added survived the second run's undo")
	}
}

func TestRestartAfterACrashMidwayRestoresTheOriginals(t *testing.T) {
	h := NewFakeHost("eth0")
	before := h.Sysctls()
	state := statePath(t)
	crash := errors.New("crash")
	h.Fail = func(op string) error {
		if op == "write net/ipv4/conf/eth0/arp_ignore" {
			return crash // the agent dies here: the all/* writes are done
		}
		return nil
	}
	first := newConfigurator(t, h, state)
	if err := first.Converge([]Binding{dr("192.0.2.100")}); !errors.Is(err, crash) {
		t.Fatalf("want the injected failure, got %v", err)
	}
	if hasAddr(t, h, "lo", "192.0.2.100/32") {
		t.Fatal("the VIP went on lo although its ARP sysctls were not all set")
	}
	h.Fail = nil
	second := newConfigurator(t, h, state)
	if err := second.Converge([]Binding{dr("192.0.2.100")}); err != nil {
		t.Fatal(err)
	}
	if err := second.Undo(); err != nil {
		t.Fatal(err)
	}
	if got := h.Sysctls(); !maps.Equal(got, before) {
		t.Errorf("after restart and undo sysctls are %v, want the originals %v", got, before)
	}
}

func TestConvergeAdoptsButNeverRemovesTheOperatorsVIP(t *testing.T) {
	h := NewFakeHost("eth0")
	operators := Address{Prefix: netip.MustParsePrefix("192.0.2.100/32")}
	h.PutAddr("lo", operators)
	c := newConfigurator(t, h, statePath(t))
	if err := c.Converge([]Binding{dr("192.0.2.100")}); err != nil {
		t.Fatal(err)
	}
	if err := c.Undo(); err != nil {
		t.Fatal(err)
	}
	if !hasAddr(t, h, "lo", "192.0.2.100/32") {
		t.Error("undo removed a VIP the operator had put on lo")
	}
	for _, op := range h.Ops() {
		if op == "add lo 192.0.2.100/32 scope host label lo:raftlvs" {
			t.Errorf("the VIP already on lo was added again: %q", h.Ops())
		}
	}
}

func TestConvergeRepairsDriftAndKeepsTheOriginal(t *testing.T) {
	h := NewFakeHost("eth0")
	before := h.Sysctls()
	c := newConfigurator(t, h, statePath(t))
	if err := c.Converge([]Binding{dr("192.0.2.100")}); err != nil {
		t.Fatal(err)
	}
	h.ResetOps()
	h.DropAddr("lo", netip.MustParsePrefix("192.0.2.100/32"))
	h.SetSysctl(confPath("all", "arp_ignore"), 0)
	if err := c.Converge([]Binding{dr("192.0.2.100")}); err != nil {
		t.Fatal(err)
	}
	assertOps(t, h, "write net/ipv4/conf/all/arp_ignore=1", "add lo 192.0.2.100/32 scope host label lo:raftlvs")
	if err := c.Undo(); err != nil {
		t.Fatal(err)
	}
	if got := h.Sysctls(); !maps.Equal(got, before) {
		t.Errorf("after drift, repair and undo: %v, want %v", got, before)
	}
}

func TestConvergeFollowsServiceChanges(t *testing.T) {
	tests := []struct {
		name     string
		from, to []Binding
		wantOps  []string
		wantAddr map[string]string // link → prefix that must be there
	}{
		{
			name:    "VIP moved",
			from:    []Binding{dr("192.0.2.100")},
			to:      []Binding{dr("192.0.2.101")},
			wantOps: []string{"del lo 192.0.2.100/32", "add lo 192.0.2.101/32 scope host label lo:raftlvs"},
		},
		{
			name: "DR to TUN",
			from: []Binding{dr("192.0.2.100")},
			to:   []Binding{tun("192.0.2.100")},
			wantOps: []string{
				"del lo 192.0.2.100/32", "create tunl0", "up tunl0",
				"write net/ipv4/conf/all/rp_filter=0", "write net/ipv4/conf/tunl0/rp_filter=0",
				"add tunl0 192.0.2.100/32 scope host label tunl0:raftlvs",
			},
		},
		{
			name: "TUN to NAT",
			from: []Binding{tun("192.0.2.100")},
			to:   []Binding{nat("192.0.2.100")},
			wantOps: []string{
				"del tunl0 192.0.2.100/32",
				"write net/ipv4/conf/tunl0/rp_filter=1", "write net/ipv4/conf/all/rp_filter=1",
				"write net/ipv4/conf/eth0/arp_announce=0", "write net/ipv4/conf/eth0/arp_ignore=0",
				"write net/ipv4/conf/all/arp_announce=0", "write net/ipv4/conf/all/arp_ignore=0",
				"down tunl0", "remove tunl0",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewFakeHost("eth0")
			for _, l := range []string{"all", "default"} {
				h.SetSysctl(confPath(l, "rp_filter"), 1)
			}
			before := h.Sysctls()
			c := newConfigurator(t, h, statePath(t))
			if err := c.Converge(tt.from); err != nil {
				t.Fatal(err)
			}
			h.ResetOps()
			if err := c.Converge(tt.to); err != nil {
				t.Fatal(err)
			}
			assertOps(t, h, tt.wantOps...)
			if err := c.Undo(); err != nil {
				t.Fatal(err)
			}
			if got := h.Sysctls(); !maps.Equal(got, before) {
				t.Errorf("after undo: %v, want %v", got, before)
			}
		})
	}
}

func TestConvergeWithoutIPIPReportsErrNoIPIPAndAddsNoTUNVIP(t *testing.T) {
	h := NewFakeHost("eth0")
	h.NoIPIP = true
	c := newConfigurator(t, h, statePath(t))
	err := c.Converge([]Binding{tun("192.0.2.100"), dr("192.0.2.101")})
	if !errors.Is(err, ErrNoIPIP) {
		t.Fatalf("want ErrNoIPIP, got %v", err)
	}
	if !hasAddr(t, h, "lo", "192.0.2.101/32") {
		t.Error("the DR VIP beside the failed TUN one was not configured")
	}
	if exists, _ := h.LinkUp(IPIPLink); exists {
		t.Error("tunl0 exists on a kernel without IPIP")
	}
}

func TestConvergeChangesNothingItCannotRecord(t *testing.T) {
	h := NewFakeHost("eth0")
	c := newConfigurator(t, h, filepath.Join(t.TempDir(), "missing-dir", "agent.state"))
	if err := c.Converge([]Binding{dr("192.0.2.100")}); err == nil {
		t.Fatal("converged without a writable state file")
	}
	assertOps(t, h) // an original value the agent cannot record must not be overwritten
}

func TestNATRouteIsOffByDefault(t *testing.T) {
	h := NewFakeHost("eth0")
	h.PutRoute(Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("192.0.2.1")})
	c := newConfigurator(t, h, statePath(t))
	if err := c.Converge([]Binding{nat("192.0.2.100")}); err != nil {
		t.Fatal(err)
	}
	assertOps(t, h)
}

func TestNATRouteReplacesTheDefaultRouteAndUndoPutsItBack(t *testing.T) {
	operators := Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("192.0.2.1"), Link: "eth0"}
	director := Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("192.0.2.2")}
	tests := []struct {
		name     string
		existing *Route
		bindings []Binding
		wantOps  []string
		undoOps  []string
	}{
		{
			name: "replaces and restores the operator's default route", existing: &operators,
			bindings: []Binding{nat("192.0.2.100")},
			wantOps:  []string{"route replace 0.0.0.0/0 via 192.0.2.2"},
			undoOps:  []string{"route replace 0.0.0.0/0 via 192.0.2.1 dev eth0"},
		},
		{
			name:     "adds and removes a route where there was none",
			bindings: []Binding{nat("192.0.2.100")},
			wantOps:  []string{"route replace 0.0.0.0/0 via 192.0.2.2"},
			undoOps:  []string{"route del 0.0.0.0/0 via 192.0.2.2"},
		},
		{
			name: "not for an IPv6 NAT service", existing: &operators,
			bindings: []Binding{nat("2001:db8::100")},
		},
		{
			name: "not for a DR service", existing: &operators,
			bindings: []Binding{{VIP: netip.MustParseAddr("2001:db8::100"), Method: fsm.DR}},
			wantOps:  []string{"add lo 2001:db8::100/128 nodad"},
			undoOps:  []string{"del lo 2001:db8::100/128"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewFakeHost("eth0")
			if tt.existing != nil {
				h.PutRoute(*tt.existing)
			}
			before := h.Routes()
			c, err := NewConfigurator(h, ConfiguratorConfig{Interface: "eth0", StateFile: statePath(t), NATRoute: Route{Via: director.Via}, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Converge(tt.bindings); err != nil {
				t.Fatal(err)
			}
			assertOps(t, h, tt.wantOps...)
			h.ResetOps()
			if err := c.Converge(tt.bindings); err != nil {
				t.Fatal(err)
			}
			assertOps(t, h) // converged: nothing more to do
			if err := c.Undo(); err != nil {
				t.Fatal(err)
			}
			assertOps(t, h, tt.undoOps...)
			if got := h.Routes(); !maps.Equal(got, before) {
				t.Errorf("routes after undo %v, want %v", got, before)
			}
		})
	}
}

func TestNATRouteWithMixedFamiliesIsRejected(t *testing.T) {
	_, err := NewConfigurator(NewFakeHost(), ConfiguratorConfig{NATRoute: Route{Dst: netip.MustParsePrefix("::/0"), Via: netip.MustParseAddr("192.0.2.2")}})
	if !errors.Is(err, ErrBadSpec) {
		t.Fatalf("want ErrBadSpec, got %v", err)
	}
}
