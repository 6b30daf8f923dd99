package ipvs

import (
	"fmt"
	"net/netip"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/raftlvs/raftlvs/fsm"
	"github.com/raftlvs/raftlvs/internal/procstat"
)

// benchSizes are the table sizes (services, each with 10 real servers) the scale
// benchmarks run at; pick one with -bench 'Name/services=10000$'.
var benchSizes = []int{1_000, 10_000, 50_000}

// benchKey is a real server of bigState: service i, real server j.
func benchKey(i, j int) fsm.RSKey {
	return fsm.RSKey{Service: fmt.Sprintf("svc-%d", i), Addr: netip.AddrFrom4([4]byte{172, 16, byte(j), 1}), Port: 8080}
}

func mustExecute(b *testing.B, st *fsm.State, c fsm.Command) {
	b.Helper()
	if err := st.Execute(c); err != nil {
		b.Fatalf("%T: %v", c, err)
	}
}

// BenchmarkHealthTransitions applies 1,000 health transitions (one fsm.SetHealths, real
// servers spread over the table) and programs them: apply and pass are both timed.
func BenchmarkHealthTransitions(b *testing.B) {
	const transitions = 1000
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			st := bigState(b, n, 10)
			r := benchReconciler(b, NewFake())
			if _, err := r.Sync(st); err != nil {
				b.Fatal(err)
			}
			batches := [2]fsm.SetHealths{}
			for i := range transitions {
				k := benchKey(i*n/transitions, i%10)
				batches[0].Updates = append(batches[0].Updates, fsm.SetHealth{Key: k, Health: fsm.HealthDown, Reason: "connect: refused"})
				batches[1].Updates = append(batches[1].Updates, fsm.SetHealth{Key: k, Health: fsm.HealthUp})
			}
			var ops OpCounts
			passes := 0
			b.ReportAllocs()
			for b.Loop() {
				mustExecute(b, st, batches[passes%2])
				p, err := r.Sync(st)
				if err != nil {
					b.Fatal(err)
				}
				ops, passes = addOps(ops, p.Ops), passes+1
			}
			reportOps(b, ops, passes)
		})
	}
}

// BenchmarkDirectorMemory loads a table of services × 10 the way a director holds it (the
// replicated state, applied as restore batches, and the reconciler's tables after its
// first pass, over a kernel that keeps nothing: the kernel's own table is not the
// director's memory) and reports the live heap and the process's RSS. Run one size per
// process (-benchtime 1x -bench 'DirectorMemory/services=10000$') for a meaningful RSS.
func BenchmarkDirectorMemory(b *testing.B) {
	for _, n := range benchSizes[1:] {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			for b.Loop() {
				heap0 := liveHeap()
				st := fsm.NewState()
				for first := 0; first < n; first += 1000 {
					var batch fsm.Batch
					for i := first; i < min(first+1000, n); i++ {
						name := fmt.Sprintf("svc-%d", i)
						batch.Commands = append(batch.Commands, fsm.AddService{Service: fsm.Service{Name: name, Protocol: fsm.TCP,
							VIP: netip.AddrFrom4([4]byte{10, 100, byte(i >> 8), byte(i)}), Port: 80, Scheduler: "wrr"}})
						for j := range 10 {
							k := benchKey(i, j)
							batch.Commands = append(batch.Commands, fsm.AddRealServer{RealServer: fsm.RealServer{Service: name, Addr: k.Addr, Port: k.Port, Weight: 1}})
						}
					}
					p, err := st.Prepare(batch)
					if err != nil {
						b.Fatal(err)
					}
					mustExecute(b, st, p)
				}
				stateHeap := liveHeap() - heap0
				r := benchReconciler(b, Discard{})
				if _, err := r.Sync(st); err != nil {
					b.Fatal(err)
				}
				total := liveHeap() - heap0
				b.ReportMetric(float64(stateHeap)/(1<<20), "state-MB")
				b.ReportMetric(float64(total-stateHeap)/(1<<20), "reconciler-MB")
				b.ReportMetric(float64(total)/(1<<20), "heap-MB")
				b.ReportMetric(float64(vmRSS(b))/(1<<20), "rss-MB")
				runtime.KeepAlive(st)
				runtime.KeepAlive(r)
			}
		})
	}
}

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// vmRSS is the resident set size of this process.
func vmRSS(b *testing.B) uint64 {
	b.Helper()
	rss, err := procstat.RSS()
	if err != nil {
		b.Skip(err)
	}
	return rss
}
