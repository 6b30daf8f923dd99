package ipvs

import (
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/raftlvs/raftlvs/fsm"
)

func TestInitialSyncProgramsTableAndSecondPassIsIdle(t *testing.T) {
	h := newHarness(t)
	h.baseState()
	p := h.sync()
	want := OpCounts{ServiceDumps: 1, ServiceAdds: 3, DestinationAdds: 5}
	if p.Ops != want {
		t.Errorf("initial pass: %s, want %s", p.Ops, want)
	}
	h.assertProgrammed()
	h.assertIdle()
	fw := h.kernel()[key(t, h, "fw")].Service
	if fw.Flags&FlagHashed == 0 {
		t.Errorf("fake does not add HASHED like the kernel: flags %#x", fw.Flags)
	}
	if fw.Netmask != 0xffffff00 || fw.Flags&^FlagHashed != FlagPersistent|FlagSched2 || fw.Timeout != 300 {
		t.Errorf("fwmark service programmed as %+v, want persistent 300 s, sh-port, mask 255.255.255.0", fw)
	}
	if dns := h.kernel()[key(t, h, "dns")].Service; dns.Netmask != 128 || dns.Flags&FlagOnePacket == 0 {
		t.Errorf("IPv6 service programmed as %+v, want netmask 128 and one-packet", dns)
	}
}

func TestEachChangeIsAppliedInPlaceWithFewOperations(t *testing.T) {
	web := func(edit func(*fsm.Service)) fsm.Command {
		s := webService()
		edit(&s)
		return fsm.EditService{Service: s}
	}
	dns := func(edit func(*fsm.Service)) fsm.Command {
		s := dnsService()
		edit(&s)
		return fsm.EditService{Service: s}
	}
	webRS := func(edit func(*fsm.RealServer)) fsm.Command {
		r := rs("web", "10.0.0.1", 8080, 1)
		edit(&r)
		return fsm.EditRealServer{RealServer: r}
	}
	one := netip.MustParseAddr("10.0.0.1")
	inhibitWeb := web(func(s *fsm.Service) { s.OnDown = fsm.DownInhibit })
	tests := []struct {
		name   string
		change []fsm.Command
		want   OpCounts
	}{
		{"add service with real servers", []fsm.Command{
			fsm.AddService{Service: fsm.Service{Name: "mail", Protocol: fsm.TCP, VIP: webVIP, Port: 25}},
			fsm.AddRealServer{RealServer: rs("mail", "10.0.0.9", 25, 1)},
			fsm.AddRealServer{RealServer: rs("mail", "10.0.0.8", 25, 1)},
		}, OpCounts{ServiceAdds: 1, DestinationAdds: 2}},
		{"remove service", []fsm.Command{fsm.RemoveService{Name: "web"}}, OpCounts{ServiceDeletes: 1}},
		{"scheduler change is an update", []fsm.Command{web(func(s *fsm.Service) { s.Scheduler = "mh"; s.SchedFlags = []string{fsm.FlagMHPort} })},
			OpCounts{ServiceUpdates: 1, DestinationDumps: 1}},
		{"persistence on", []fsm.Command{web(func(s *fsm.Service) { s.Persistence = 600; s.PersistMask = 16 })},
			OpCounts{ServiceUpdates: 1, DestinationDumps: 1}},
		{"persistence engine", []fsm.Command{web(func(s *fsm.Service) { s.Persistence = 60; s.PersistEngine = "sip" })},
			OpCounts{ServiceUpdates: 1, DestinationDumps: 1}},
		{"service forwarding change edits every real server in place", []fsm.Command{dns(func(s *fsm.Service) { s.Forwarding = fsm.TUN })},
			OpCounts{DestinationDumps: 1, DestinationUpdates: 2}},
		{"VIP change recreates the service", []fsm.Command{web(func(s *fsm.Service) { s.VIP = netip.MustParseAddr("192.0.2.11") })},
			OpCounts{ServiceDeletes: 1, ServiceAdds: 1, DestinationAdds: 2}},
		{"add real server", []fsm.Command{fsm.AddRealServer{RealServer: rs("web", "10.0.0.3", 8080, 1)}},
			OpCounts{DestinationDumps: 1, DestinationAdds: 1}},
		{"remove real server", []fsm.Command{fsm.RemoveRealServer{Key: fsm.RSKey{Service: "web", Addr: one, Port: 8080}}},
			OpCounts{DestinationDumps: 1, DestinationDeletes: 1}},
		{"weight", []fsm.Command{webRS(func(r *fsm.RealServer) { r.Weight = 7 })},
			OpCounts{DestinationDumps: 1, DestinationUpdates: 1}},
		{"thresholds", []fsm.Command{webRS(func(r *fsm.RealServer) { r.UpperThreshold = 100; r.LowerThreshold = 10 })},
			OpCounts{DestinationDumps: 1, DestinationUpdates: 1}},
		{"drain keeps the real server at weight 0", []fsm.Command{webRS(func(r *fsm.RealServer) { r.Admin = fsm.Draining })},
			OpCounts{DestinationDumps: 1, DestinationUpdates: 1}},
		{"health down removes the real server (on_down remove, the default)", []fsm.Command{fsm.SetHealth{Key: fsm.RSKey{Service: "web", Addr: one, Port: 8080}, Health: fsm.HealthDown}},
			OpCounts{DestinationDumps: 1, DestinationDeletes: 1}},
		{"health down under on_down inhibit keeps the real server at weight 0", []fsm.Command{
			fsm.SetHealth{Key: fsm.RSKey{Service: "web", Addr: one, Port: 8080}, Health: fsm.HealthDown}, inhibitWeb},
			OpCounts{DestinationDumps: 1, DestinationUpdates: 1}},
		{"real server method override", []fsm.Command{fsm.EditRealServer{RealServer: fsm.RealServer{
			Service: "dns", Addr: netip.MustParseAddr("2001:db8::1"), Port: 53, Weight: 1, Forwarding: fsm.TUN}}},
			OpCounts{DestinationDumps: 1, DestinationUpdates: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.baseState()
			h.sync()
			h.exec(tt.change...)
			p := h.sync()
			if p.Ops != tt.want {
				t.Errorf("pass: %s\nwant:  %s", p.Ops, tt.want)
			}
			h.assertProgrammed()
			h.assertIdle()
		})
	}
}

func TestDrainAndHealthDownProgramWeightZero(t *testing.T) {
	h := newHarness(t)
	h.baseState()
	one := fsm.RSKey{Service: "web", Addr: netip.MustParseAddr("10.0.0.1"), Port: 8080}
	h.exec(fsm.SetHealth{Key: one, Health: fsm.HealthDown})
	h.sync()
	for _, d := range h.kernel()[key(t, h, "web")].Destinations {
		if d.Address == one.Addr && d.Weight != 0 {
			t.Errorf("real server down: kernel weight %d, want 0 (kept so connections finish)", d.Weight)
		}
	}
}

func TestMethodMapsToKernelForwarding(t *testing.T) {
	h := newHarness(t)
	h.baseState()
	h.sync()
	tbl := h.kernel()
	for name, want := range map[string]Forwarding{"web": ForwardMasq, "dns": ForwardRoute, "fw": ForwardTunnel} {
		for _, d := range tbl[key(t, h, name)].Destinations {
			if d.Forwarding != want {
				t.Errorf("%s real server %s: forwarding %s, want %s", name, d.Key(), d.Forwarding, want)
			}
		}
	}
}

func TestRepairRestoresServiceDeletedByHand(t *testing.T) {
	h := newHarness(t)
	h.baseState()
	h.sync()
	web := h.kernel()[key(t, h, "web")].Service
	if err := h.fake.DeleteService(web); err != nil { // ipvsadm -D
		t.Fatal(err)
	}
	p, err := h.r.Repair()
	if err != nil {
		t.Fatalf("Repair: %v", err)
	}
	if want := (OpCounts{ServiceDumps: 1, ServiceAdds: 1, DestinationAdds: 2}); p.Ops.Writes() != want.Writes() || p.Ops.ServiceAdds != 1 {
		t.Errorf("repair: %s, want the service and its 2 real servers re-added", p.Ops)
	}
	h.assertProgrammed()
	h.assertIdle()
}

func TestRepairRevertsServiceEditedByHand(t *testing.T) {
	h := newHarness(t)
	h.baseState()
	h.sync()
	web := h.kernel()[key(t, h, "web")].Service
	web.Scheduler = "rr" // ipvsadm -E -s rr
	if err := h.fake.UpdateService(web); err != nil {
		t.Fatal(err)
	}
	p, err := h.r.Repair()
	if err != nil {
		t.Fatalf("Repair: %v", err)
	}
	if p.Ops.ServiceUpdates != 1 || p.Ops.ServiceAdds+p.Ops.ServiceDeletes != 0 {
		t.Errorf("repair: %s, want one in-place update", p.Ops)
	}
	h.assertProgrammed()
}

func TestRepairRevertsWeightChangedByHand(t *testing.T) {
	for _, tt := range []struct {
		name   string
		repair func(*Reconciler) (PassStats, error)
		passes int // bound on passes before the weight is back
	}{
		{"full sweep", (*Reconciler).RepairAll, 1},
		// 3 services swept over 30 passes: one service a pass, all within 3.
		{"rolling sweep", (*Reconciler).Repair, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.baseState()
			h.sync()
			web := h.kernel()[key(t, h, "web")]
			d := web.Destinations[0]
			d.Weight = 50 // ipvsadm -e -w 50
			if err := h.fake.UpdateDestination(web.Service, d); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < tt.passes; i++ {
				if _, err := tt.repair(h.r); err != nil {
					t.Fatalf("repair: %v", err)
				}
			}
			h.assertProgrammed()
		})
	}
}

func TestForeignServicesAreLeftAlone(t *testing.T) {
	h := newHarness(t)
	foreign := Service{Family: FamilyIPv4, Protocol: ProtocolTCP, Address: netip.MustParseAddr("198.51.100.1"), Port: 443,
		Scheduler: "rr", Netmask: 0xffffffff}
	if err := h.fake.AddService(foreign); err != nil {
		t.Fatal(err)
	}
	fd := Destination{Address: netip.MustParseAddr("10.9.9.9"), Port: 443, Weight: 3}
	if err := h.fake.AddDestination(foreign, fd); err != nil {
		t.Fatal(err)
	}
	h.baseState()
	h.sync()
	h.assertProgrammed(foreign.Key())
	h.exec(fsm.RemoveService{Name: "web"}, fsm.RemoveService{Name: "dns"}, fsm.RemoveService{Name: "fw"})
	h.sync()
	if _, err := h.r.RepairAll(); err != nil {
		t.Fatalf("RepairAll: %v", err)
	}
	got := h.kernel()
	if len(got) != 1 || got[foreign.Key()] == nil || !got[foreign.Key()].Destinations[0].Equal(fd) {
		t.Errorf("kernel after removing every raftlvs service: %v, want only the untouched foreign service", got.Sorted())
	}
	if s := h.r.Stats(); s.Foreign != 1 {
		t.Errorf("Stats().Foreign = %d, want 1", s.Foreign)
	}
}

func TestOwnershipSurvivesRestart(t *testing.T) {
	h := newHarness(t)
	foreign := Service{Family: FamilyIPv4, Protocol: ProtocolTCP, Address: netip.MustParseAddr("198.51.100.1"), Port: 443,
		Scheduler: "rr", Netmask: 0xffffffff}
	if err := h.fake.AddService(foreign); err != nil {
		t.Fatal(err)
	}
	h.baseState()
	h.sync()
	// The director stops; meanwhile the cluster removes a service; the director restarts.
	h.exec(fsm.RemoveService{Name: "dns"})
	h.r = h.newReconciler()
	h.sync()
	h.assertProgrammed(foreign.Key())
	h.assertIdle()
}

func TestOwnershipIsRecordedBeforeCreate(t *testing.T) {
	h := newHarness(t)
	h.baseState()
	h.fake.FailNext(syscall.EIO) // the first operation (the dump) fails
	if _, err := h.r.Sync(h.st); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Sync with a failing kernel: %v, want EIO", err)
	}
	h.sync()
	b, err := os.ReadFile(filepath.Join(h.dir, ownershipFile))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), `"family"`); n != 3 {
		t.Errorf("ownership file lists %d services, want 3: %s", n, b)
	}
	h.exec(fsm.RemoveService{Name: "web"})
	h.sync()
	o, err := loadOwnership(h.dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.keys) != 2 || o.owns(key(t, h, "dns")) == false {
		t.Errorf("after deleting web the ownership file holds %v, want dns and fw", o.keys)
	}
}

func TestFailedOperationIsRetriedOnNextRepair(t *testing.T) {
	h := newHarness(t)
	h.baseState()
	h.sync()
	h.exec(fsm.AddRealServer{RealServer: rs("web", "10.0.0.3", 8080, 4)})
	h.fake.FailNext(syscall.ENOMEM) // the dump of web's destinations fails
	if _, err := h.r.Sync(h.st); !errors.Is(err, syscall.ENOMEM) {
		t.Fatalf("Sync: %v, want ENOMEM", err)
	}
	if s := h.r.Stats(); s.Errors != 1 || s.LastError == "" {
		t.Errorf("Stats after a failure: %+v", s)
	}
	if _, err := h.r.Repair(); err != nil {
		t.Fatalf("Repair: %v", err)
	}
	h.assertProgrammed()
	h.assertIdle()
}

func TestServiceCreatedByHandIsTakenOverInPlace(t *testing.T) {
	h := newHarness(t)
	h.baseState()
	web := Desired(h.st)[key(t, h, "web")]
	byHand := web.Service
	byHand.Scheduler = "rr"
	if err := h.fake.AddService(byHand); err != nil {
		t.Fatal(err)
	}
	p := h.sync()
	if p.Ops.ServiceDeletes != 0 || p.Ops.ServiceUpdates != 1 {
		t.Errorf("takeover: %s, want one update and no delete", p.Ops)
	}
	h.assertProgrammed()
	h.assertIdle()
}

func TestQuorumLostProgramsSorryServer(t *testing.T) {
	h := newHarness(t)
	svc := webService()
	svc.Quorum = 3
	svc.SorryServer = netip.MustParseAddrPort("10.0.9.9:8081")
	h.exec(
		fsm.AddService{Service: svc},
		fsm.AddRealServer{RealServer: rs("web", "10.0.0.1", 8080, 1)},
		fsm.AddRealServer{RealServer: rs("web", "10.0.0.2", 8080, 1)},
	)
	h.sync()
	sorry := []Destination{{Address: netip.MustParseAddr("10.0.9.9"), Port: 8081, Weight: 1, Forwarding: ForwardMasq}}
	got := h.kernel()[key(t, h, "web")]
	if !slicesEqual(got.Destinations, sorry) {
		t.Errorf("weight 2 below quorum 3: destinations %+v, want only the sorry server", got.Destinations)
	}
	if tbl := h.r.Table(); len(tbl) != 1 || !tbl[0].Sorry {
		t.Errorf("Table() does not report the sorry server: %+v", tbl)
	}
	h.exec(fsm.EditRealServer{RealServer: rs("web", "10.0.0.2", 8080, 2)})
	h.sync()
	if got := h.kernel()[key(t, h, "web")]; len(got.Destinations) != 2 || got.Destinations[0].Address != netip.MustParseAddr("10.0.0.1") {
		t.Errorf("quorum reached: destinations %+v, want the two real servers", got.Destinations)
	}
	h.exec(fsm.SetHealth{Key: fsm.RSKey{Service: "web", Addr: netip.MustParseAddr("10.0.0.2"), Port: 8080}, Health: fsm.HealthDown})
	h.sync()
	if got := h.kernel()[key(t, h, "web")]; !slicesEqual(got.Destinations, sorry) {
		t.Errorf("quorum lost to a health check: destinations %+v, want the sorry server", got.Destinations)
	}
	h.assertIdle()
}

func slicesEqual(a, b []Destination) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

func TestStatsAndTableReportTheProgrammedTable(t *testing.T) {
	h := newHarness(t)
	h.baseState()
	h.sync()
	s := h.r.Stats()
	if s.Services != 3 || s.Destinations != 5 || s.Passes != 1 || s.Ops.ServiceAdds != 3 {
		t.Errorf("Stats = %+v, want 3 services, 5 real servers, 1 pass, 3 service adds", s)
	}
	tbl := h.r.Table()
	if len(tbl) != 3 || tbl[0].Name != "web" || tbl[2].Name != "fw" {
		t.Errorf("Table order: %v, want web, dns, fw (ipvsadm order)", names(tbl))
	}
}

func names(es []Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Name)
	}
	return out
}

func TestNewServicesGoToTheKernelManyToABatch(t *testing.T) {
	h := newHarness(t)
	h.sync() // the first pass (a full repair) has run; new services come in a sync pass
	n := 2*createBatch + 3
	h.st = bigState(t, n, 10)
	// One of them exists already, made by hand with a real server raftlvs does not want:
	// its writes in the batch fail (EEXIST) and it alone is taken over the careful way.
	taken := Desired(h.st)[ServiceKey{Family: FamilyIPv4, Protocol: ProtocolTCP, Address: netip.MustParseAddr("10.100.1.44"), Port: 80}]
	if taken == nil {
		t.Fatal("no service 10.100.1.44:80 in the generated state")
	}
	if err := h.fake.AddService(taken.Service); err != nil {
		t.Fatal(err)
	}
	if err := h.fake.AddDestination(taken.Service, Destination{Address: netip.MustParseAddr("192.0.2.99"), Port: 8080, Weight: 1}); err != nil {
		t.Fatal(err)
	}
	p := h.sync()
	if got := h.fake.Batches(); got != 4 { // 3 of new services, 1 for the stray real server
		t.Errorf("%d batches, want 4", got)
	}
	// The taken-over service: its add fails in the batch and once more on its own, then
	// an update, a dump of its real servers and the delete of the stray one.
	want := OpCounts{DestinationDumps: 1, ServiceAdds: n + 1, ServiceUpdates: 1, DestinationAdds: n * 10, DestinationDeletes: 1}
	if p.Ops != want || p.Services != n || p.Errors != 0 {
		t.Errorf("pass: %d services, %d errors, %s; want %d, 0, %s", p.Services, p.Errors, p.Ops, n, want)
	}
	h.assertProgrammed()
	h.assertIdle()
}

func TestRollingSweepReadsAtMostMaxSweepListsAPass(t *testing.T) {
	h := newHarness(t)
	h.st = bigState(t, 100, 2)
	h.sync()
	r, err := NewReconciler(ReconcilerConfig{Kernel: h.fake, StateDir: h.dir, MaxSweep: 2,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Sync(h.st); err != nil { // first pass: a full repair, every list read
		t.Fatal(err)
	}
	p, err := r.Repair() // 100 services over 30 passes would be 4 lists a pass
	if err != nil || p.Ops.DestinationDumps != 2 || p.Ops.Writes() != 0 {
		t.Errorf("repair over 100 unchanged services: %s, %v; want 2 destination dumps", p.Ops, err)
	}
	if p, _ := h.r.Repair(); p.Ops.DestinationDumps != 4 { // the default cap, 64, does not bind
		t.Errorf("repair with the default cap: %d destination dumps, want 4", p.Ops.DestinationDumps)
	}
}
