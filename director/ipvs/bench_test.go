package ipvs

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/raftlvs/raftlvs/fsm"
)

// bigState has services × realServers: IPv4 TCP services on 10.x VIPs, NAT real servers.
func bigState(tb testing.TB, services, realServers int) *fsm.State {
	tb.Helper()
	st := fsm.NewState()
	exec := func(c fsm.Command) {
		if err := st.Execute(c); err != nil {
			tb.Fatalf("%T: %v", c, err)
		}
	}
	for i := range services {
		svc := fsm.Service{Name: fmt.Sprintf("svc-%d", i), Protocol: fsm.TCP,
			VIP: netip.AddrFrom4([4]byte{10, 100, byte(i >> 8), byte(i)}), Port: 80}
		fsm.NormalizeService(&svc)
		exec(fsm.AddService{Service: svc})
		for j := range realServers {
			r := fsm.RealServer{Service: svc.Name, Addr: netip.AddrFrom4([4]byte{172, 16, byte(j), 1}), Port: 8080, Weight: 1}
			fsm.NormalizeRealServer(&r, &svc)
			exec(fsm.AddRealServer{RealServer: r})
		}
	}
	return st
}

func benchReconciler(b *testing.B, k Kernel) *Reconciler {
	b.Helper()
	r, err := NewReconciler(ReconcilerConfig{Kernel: k, StateDir: b.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	return r
}

func reportOps(b *testing.B, ops OpCounts, passes int) {
	b.ReportMetric(float64(ops.Total())/float64(passes), "kernel-ops/pass")
	b.ReportMetric(float64(ops.Writes())/float64(passes), "writes/pass")
	b.ReportMetric(float64(ops.DestinationDumps)/float64(passes), "dest-dumps/pass")
}

// BenchmarkProgram programs services × 10 real servers into the Fake (initial), applies
// one change (a real server's weight) to the programmed table (one-change: the
// reconciler's pass only, not the fsm's apply), and repairs an unchanged table.
func BenchmarkProgram(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) { benchmarkProgram(b, n) })
	}
}

// BenchmarkProgram10kServices is BenchmarkProgram at 10,000 services, the size the
// figures are quoted at.
func BenchmarkProgram10kServices(b *testing.B) { benchmarkProgram(b, 10_000) }

func benchmarkProgram(b *testing.B, services int) {
	st := bigState(b, services, 10)

	b.Run("initial", func(b *testing.B) {
		var ops OpCounts
		passes := 0
		for b.Loop() {
			b.StopTimer()
			r := benchReconciler(b, NewFake())
			b.StartTimer()
			p, err := r.Sync(st)
			if err != nil {
				b.Fatal(err)
			}
			ops, passes = addOps(ops, p.Ops), passes+1
		}
		reportOps(b, ops, passes)
	})

	b.Run("one-change", func(b *testing.B) {
		r := benchReconciler(b, NewFake())
		if _, err := r.Sync(st); err != nil {
			b.Fatal(err)
		}
		rs, _ := st.RealServer(benchKey(services/2, 3))
		var ops OpCounts
		passes := 0
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			rs.Weight = 10 - rs.Weight // 9, 1, 9, …: always a change
			mustExecute(b, st, fsm.EditRealServer{RealServer: rs})
			b.StartTimer()
			p, err := r.Sync(st)
			if err != nil {
				b.Fatal(err)
			}
			ops, passes = addOps(ops, p.Ops), passes+1
		}
		reportOps(b, ops, passes)
	})

	b.Run("repair-unchanged", func(b *testing.B) {
		r := benchReconciler(b, NewFake())
		if _, err := r.Sync(st); err != nil {
			b.Fatal(err)
		}
		var ops OpCounts
		passes := 0
		for b.Loop() {
			p, err := r.Repair()
			if err != nil {
				b.Fatal(err)
			}
			ops, passes = addOps(ops, p.Ops), passes+1
		}
		reportOps(b, ops, passes)
	})
}

func addOps(a, b OpCounts) OpCounts {
	return OpCounts{
		ServiceDumps: a.ServiceDumps + b.ServiceDumps, DestinationDumps: a.DestinationDumps + b.DestinationDumps,
		ServiceAdds: a.ServiceAdds + b.ServiceAdds, ServiceUpdates: a.ServiceUpdates + b.ServiceUpdates,
		ServiceDeletes: a.ServiceDeletes + b.ServiceDeletes, DestinationAdds: a.DestinationAdds + b.DestinationAdds,
		DestinationUpdates: a.DestinationUpdates + b.DestinationUpdates, DestinationDeletes: a.DestinationDeletes + b.DestinationDeletes,
	}
}
