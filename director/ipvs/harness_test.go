package ipvs

import (
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"testing"

	"github.com/raftlvs/raftlvs/fsm"
)

// harness drives a Reconciler over a Fake from an fsm.State the test edits.
type harness struct {
	t    testing.TB
	st   *fsm.State
	fake *Fake
	dir  string
	r    *Reconciler
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	h := &harness{t: t, st: fsm.NewState(), fake: NewFake(), dir: t.TempDir()}
	h.r = h.newReconciler()
	return h
}

func (h *harness) newReconciler() *Reconciler {
	h.t.Helper()
	r, err := NewReconciler(ReconcilerConfig{
		Kernel:   h.fake,
		StateDir: h.dir,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		h.t.Fatalf("NewReconciler: %v", err)
	}
	return r
}

// exec applies commands as the leader would: prepared, then executed.
func (h *harness) exec(cmds ...fsm.Command) {
	h.t.Helper()
	for _, c := range cmds {
		p, err := h.st.Prepare(c)
		if err != nil {
			h.t.Fatalf("prepare %T: %v", c, err)
		}
		if err := h.st.Execute(p); err != nil {
			h.t.Fatalf("execute %T: %v", c, err)
		}
	}
}

func (h *harness) sync() PassStats {
	h.t.Helper()
	p, err := h.r.Sync(h.st)
	if err != nil {
		h.t.Fatalf("Sync: %v", err)
	}
	return p
}

// kernel reads the whole fake table, without going through the Reconciler.
func (h *harness) kernel() Table {
	h.t.Helper()
	return readTable(h.t, h.fake)
}

func readTable(t testing.TB, k Kernel) Table {
	t.Helper()
	svcs, err := k.Services()
	if err != nil {
		t.Fatalf("Services: %v", err)
	}
	out := Table{}
	for _, s := range svcs {
		d, err := k.Destinations(s)
		if err != nil {
			t.Fatalf("Destinations(%s): %v", s.Key(), err)
		}
		slices.SortFunc(d, compareDests)
		out[s.Key()] = &Entry{Service: s, Destinations: d}
	}
	return out
}

// assertProgrammed checks that the kernel holds exactly the desired table plus the
// foreign services given.
func (h *harness) assertProgrammed(foreign ...ServiceKey) {
	h.t.Helper()
	want := Desired(h.st)
	got := h.kernel()
	for _, k := range foreign {
		if got[k] == nil {
			h.t.Errorf("foreign service %s is gone", k)
		}
		delete(got, k)
	}
	for k, w := range want {
		g := got[k]
		switch {
		case g == nil:
			h.t.Errorf("service %s (%s) missing from the kernel", k, w.Name)
		case !g.Equal(w):
			h.t.Errorf("service %s differs:\n kernel  %+v %+v\n desired %+v %+v", k, g.Service, g.Destinations, w.Service, w.Destinations)
		}
	}
	for k := range got {
		if want[k] == nil {
			h.t.Errorf("kernel holds unexpected service %s", k)
		}
	}
}

// assertIdle checks that a sync and a repair over an unchanged table write nothing.
func (h *harness) assertIdle() {
	h.t.Helper()
	if p := h.sync(); p.Ops.Total() != 0 {
		h.t.Errorf("second sync over an unchanged table: %s, want no operations", p.Ops)
	}
	p, err := h.r.RepairAll()
	if err != nil {
		h.t.Fatalf("RepairAll: %v", err)
	}
	if p.Ops.Writes() != 0 {
		h.t.Errorf("repair over an unchanged table: %s, want no writes", p.Ops)
	}
}

var (
	webVIP = netip.MustParseAddr("192.0.2.10")
	dnsVIP = netip.MustParseAddr("2001:db8::53")
)

func webService() fsm.Service {
	return fsm.Service{Name: "web", Protocol: fsm.TCP, VIP: webVIP, Port: 80, Scheduler: "wlc"}
}

func dnsService() fsm.Service {
	return fsm.Service{Name: "dns", Protocol: fsm.UDP, VIP: dnsVIP, Port: 53, Scheduler: "rr", Forwarding: fsm.DR, OnePacket: true}
}

func rs(service, addr string, port uint16, weight int) fsm.RealServer {
	return fsm.RealServer{Service: service, Addr: netip.MustParseAddr(addr), Port: port, Weight: weight}
}

// baseState: an IPv4 NAT service, an IPv6 DR service, a fwmark TUN service with
// persistence and scheduler flags.
func (h *harness) baseState() {
	h.exec(
		fsm.AddService{Service: webService()},
		fsm.AddRealServer{RealServer: rs("web", "10.0.0.1", 8080, 1)},
		fsm.AddRealServer{RealServer: rs("web", "10.0.0.2", 8080, 2)},
		fsm.AddService{Service: dnsService()},
		fsm.AddRealServer{RealServer: rs("dns", "2001:db8::1", 53, 1)},
		fsm.AddRealServer{RealServer: rs("dns", "2001:db8::2", 53, 1)},
		fsm.AddService{Service: fsm.Service{Name: "fw", FWMark: 100, Scheduler: "sh", SchedFlags: []string{fsm.FlagSHPort},
			Persistence: 300, PersistMask: 24, Forwarding: fsm.TUN}},
		fsm.AddRealServer{RealServer: rs("fw", "10.0.1.1", 0, 5)},
	)
}

func key(t testing.TB, h *harness, name string) ServiceKey {
	t.Helper()
	svc, ok := h.st.Service(name)
	if !ok {
		t.Fatalf("no service %s", name)
	}
	k := KernelService(&svc)
	return k.Key()
}
