package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/director/ipvs"
	"github.com/raftlvs/raftlvs/fsm"
	"github.com/raftlvs/raftlvs/internal/procstat"
)

// scaleSizes are the table sizes (services, each with 10 real servers) of the end-to-end
// benchmarks; pick one with -bench 'Name/services=10000$'.
var scaleSizes = []int{1_000, 10_000, 50_000}

// tableService and tableServer are service i and its real server j of a benchmark table.
func tableService(i int) fsm.Service {
	return fsm.Service{Name: fmt.Sprintf("svc%d", i), Protocol: fsm.TCP, VIP: netip.AddrFrom4([4]byte{10, 100, byte(i >> 8), byte(i)}),
		Port: 80, Scheduler: "wrr", Forwarding: fsm.NAT}
}

func tableServer(i, j int) fsm.RealServer {
	return fsm.RealServer{Service: fmt.Sprintf("svc%d", i), Addr: netip.AddrFrom4([4]byte{10, 101, byte(j), 1}), Port: 8080, Weight: 1}
}

// tableCommands is what `raftlvs restore` of services × 10 sends: each service, then its
// real servers.
func tableCommands(services int) []fsm.Command {
	cmds := make([]fsm.Command, 0, services*11)
	for i := range services {
		cmds = append(cmds, fsm.AddService{Service: tableService(i)})
		for j := range 10 {
			cmds = append(cmds, fsm.AddRealServer{RealServer: tableServer(i, j)})
		}
	}
	return cmds
}

// loadTable commits a table of services × 10 through the leader, 1,000 services to a batch.
func loadTable(ctx context.Context, b *testing.B, tc *testCluster, services int) {
	b.Helper()
	for chunk := range slices.Chunk(tableCommands(services), 11_000) {
		tc.apply(ctx, fsm.Batch{Commands: chunk})
	}
}

// reportingKernel is a fake kernel that shows each write it applied to a watcher.
type reportingKernel struct {
	*ipvs.Fake
	mu    sync.Mutex
	watch func(ipvs.Op)
}

func (k *reportingKernel) Apply(ops []ipvs.Op) []error {
	errs := k.Fake.Apply(ops)
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.watch != nil {
		for i, op := range ops {
			if errs[i] == nil {
				k.watch(op)
			}
		}
	}
	return errs
}

func (k *reportingKernel) setWatch(fn func(ipvs.Op)) {
	k.mu.Lock()
	k.watch = fn
	k.mu.Unlock()
}

// benchDirector is a director as far as these benchmarks go: its Raft node and its
// reconciler over its own fake kernel.
type benchDirector struct {
	node   *Node
	kernel *reportingKernel
	rec    *ipvs.Reconciler
}

// reconciledDirectors starts three directors on loopback with the default timings (but
// the commit timeout, when given), each reconciling its fake kernel, loads a table of
// services × 10 and waits until every director has programmed it.
func reconciledDirectors(ctx context.Context, b *testing.B, services int, commitTimeout time.Duration) (*testCluster, []*benchDirector) {
	b.Helper()
	tc := newTestCluster(b)
	tc.ourDefaults = true
	opt := func(c *Config) { c.CommitTimeout = commitTimeout }
	d1 := tc.start("d1", true, opt)
	tc.leader(d1)
	tc.established(d1)
	tc.join(ctx, tc.start("d2", false, opt))
	tc.join(ctx, tc.start("d3", false, opt))
	var ds []*benchDirector
	for _, id := range []string{"d1", "d2", "d3"} {
		tc.mu.Lock()
		d := &benchDirector{node: tc.nodes[id], kernel: &reportingKernel{Fake: ipvs.NewFake()}}
		tc.mu.Unlock()
		rec, err := ipvs.NewReconciler(ipvs.ReconcilerConfig{Kernel: d.kernel, StateDir: b.TempDir(),
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			b.Fatal(err)
		}
		d.rec = rec
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = rec.Run(runCtx, d.node) }()
		b.Cleanup(func() { stop(); <-done })
		ds = append(ds, d)
	}
	loadTable(ctx, b, tc, services)
	for _, d := range ds {
		eventually(b, "the table programmed on "+d.node.ID(), func() bool {
			return d.rec.Stats().Destinations == services*10
		})
	}
	return tc, ds
}

// BenchmarkWriteToProgrammed measures one write from its submission to the leader until
// every one of three directors has programmed it into its (fake) kernel: a real server's
// weight, in a table of services × 10. A follower applies an entry when it learns that it
// is committed, from the next AppendEntries: the leader sends one after at most twice
// the commit timeout (raft's 50 ms, our DefaultCommitTimeout, and 5 ms side by side).
func BenchmarkWriteToProgrammed(b *testing.B) {
	for _, n := range scaleSizes {
		for _, commit := range []time.Duration{50 * time.Millisecond, DefaultCommitTimeout, 5 * time.Millisecond} {
			b.Run(fmt.Sprintf("services=%d/commit=%v", n, commit), func(b *testing.B) { benchmarkWriteToProgrammed(b, n, commit) })
		}
	}
}

func benchmarkWriteToProgrammed(b *testing.B, n int, commit time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	tc, ds := reconciledDirectors(ctx, b, n, commit)
	rs := tableServer(n/2, 3)
	rs.Origin = fsm.OriginOperator
	vip := tableService(n / 2).VIP
	var latencies []time.Duration
	b.ResetTimer()
	for i := range b.N {
		rs.Weight = 2 + i%2
		want := rs
		var wg sync.WaitGroup
		for _, d := range ds {
			wg.Add(1)
			var once sync.Once
			d.kernel.setWatch(func(op ipvs.Op) {
				if op.Kind == ipvs.OpUpdateDestination && op.Service.Address == vip && op.Destination.Address == want.Addr && op.Destination.Weight == want.Weight {
					once.Do(wg.Done)
				}
			})
		}
		t0 := time.Now()
		tc.apply(ctx, fsm.EditRealServer{RealServer: want})
		wg.Wait()
		latencies = append(latencies, time.Since(t0))
	}
	b.StopTimer()
	reportLatencies(b, latencies)
}

func reportLatencies(b *testing.B, all []time.Duration) {
	slices.Sort(all)
	pct := func(p float64) float64 {
		return float64(all[min(len(all)-1, int(float64(len(all))*p))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(1), "max-ms")
}

// BenchmarkHealthTransitionsProgrammed commits 1,000 health transitions within one second
// (ten fsm.SetHealths of 100, 100 ms apart, as the leader's aggregation would) in a table of
// services × 10 and measures until all of them are programmed on all three directors,
// from the first write (all-ms) and from the last one's acknowledgement (after-last-ms).
func BenchmarkHealthTransitionsProgrammed(b *testing.B) {
	const transitions, perWrite = 1000, 100
	for _, n := range scaleSizes {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			tc, ds := reconciledDirectors(ctx, b, n, DefaultCommitTimeout)
			var keys []fsm.RSKey
			for i := range transitions {
				rs := tableServer(i*n/transitions, i%10)
				keys = append(keys, rs.Key())
			}
			var all, afterLast []time.Duration
			b.ResetTimer()
			for i := range b.N {
				health, kind := fsm.HealthDown, ipvs.OpDeleteDestination // on_down remove
				if i%2 == 1 {
					health, kind = fsm.HealthUp, ipvs.OpAddDestination
				}
				var wg sync.WaitGroup
				for _, d := range ds {
					wg.Add(1)
					seen := 0
					d.kernel.setWatch(func(op ipvs.Op) {
						if op.Kind == kind {
							if seen++; seen == transitions {
								wg.Done()
							}
						}
					})
				}
				t0 := time.Now()
				tick := time.NewTicker(time.Second / (transitions / perWrite))
				for w, chunk := range slices.Collect(slices.Chunk(keys, perWrite)) {
					if w > 0 {
						<-tick.C // 100 ms apart: the ten writes span 0.9 s
					}
					var c fsm.SetHealths
					for _, k := range chunk {
						c.Updates = append(c.Updates, fsm.SetHealth{Key: k, Health: health, Since: time.Now()})
					}
					tc.apply(ctx, c)
				}
				tick.Stop()
				last := time.Now()
				wg.Wait()
				all = append(all, time.Since(t0))
				afterLast = append(afterLast, time.Since(last))
			}
			b.StopTimer()
			slices.Sort(all)
			slices.Sort(afterLast)
			b.ReportMetric(float64(all[len(all)-1].Milliseconds()), "all-ms")
			b.ReportMetric(float64(afterLast[len(afterLast)-1].Microseconds())/1000, "after-last-ms")
		})
	}
}

// BenchmarkDirectorRSS runs one director (a one-node cluster: Raft with bolt, the state,
// its reconciler over a kernel that keeps nothing), loads a table of services × 10 and
// reports its live heap and the process's RSS. Run one size per process for a meaningful
// RSS: -benchtime 1x -bench 'DirectorRSS/services=10000$'.
func BenchmarkDirectorRSS(b *testing.B) {
	for _, n := range scaleSizes[1:] {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			for b.Loop() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
				tc := newTestCluster(b)
				tc.ourDefaults = true
				d1 := tc.start("d1", true)
				tc.leader(d1)
				tc.established(d1)
				rec, err := ipvs.NewReconciler(ipvs.ReconcilerConfig{Kernel: ipvs.Discard{}, StateDir: b.TempDir(),
					Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
				if err != nil {
					b.Fatal(err)
				}
				runCtx, stop := context.WithCancel(ctx)
				done := make(chan struct{})
				go func() { defer close(done); _ = rec.Run(runCtx, d1) }()
				t0 := time.Now()
				loadTable(ctx, b, tc, n)
				eventually(b, "the table programmed", func() bool { return rec.Stats().Destinations == n*10 })
				b.ReportMetric(float64(time.Since(t0).Milliseconds()), "load-ms")
				runtime.GC()
				debug.FreeOSMemory()
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				b.ReportMetric(float64(m.HeapInuse)/(1<<20), "heap-MB")
				b.ReportMetric(float64(vmRSS(b))/(1<<20), "rss-MB")
				stop()
				<-done
				tc.stop("d1")
				cancel()
			}
		})
	}
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

// stageAndCommit commits cmds through leader as one staged transaction: chunks of at most
// chunk commands, inflight of them in flight at once (raft then writes and replicates
// several per fsync), then the one small commit entry.
func stageAndCommit(ctx context.Context, leader *Node, tx string, cmds []fsm.Command, chunk, inflight int) error {
	chunks := fsm.SplitForStaging(cmds, chunk)
	sem := make(chan struct{}, inflight)
	errs := make(chan error, len(chunks))
	var wg sync.WaitGroup
	for seq, c := range chunks {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := leader.Apply(ctx, fsm.StageChunk{Tx: tx, Seq: seq, Commands: c}); err != nil {
				errs <- fmt.Errorf("stage chunk %d: %w", seq, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		_ = leader.Apply(ctx, fsm.AbortStaged{Tx: tx})
		return err
	}
	return leader.Apply(ctx, fsm.CommitStaged{Tx: tx, Chunks: len(chunks)})
}

// BenchmarkCommitStagedRestore commits a restore of services × 10 (what `raftlvs restore`
// of a 110,000-rule ipvsadm file sends at 10,000) as one staged transaction through the
// leader of three directors on loopback, bolt with fsync: chunks of 11,000 commands
// (1,000 services) sent one at a time or four at a time, then the commit. ack-ms is the
// mean time to the leader's answer to the commit (a quorum has every entry, the leader
// applied it), everywhere-ms until every director has applied it.
func BenchmarkCommitStagedRestore(b *testing.B) {
	for _, n := range scaleSizes[1:] {
		for _, inflight := range []int{1, 4} {
			if n > 10_000 && inflight > 1 {
				// Three directors in one process on two cores: four 3 MB chunks at once
				// starve the followers' heartbeats into an election. On machines of their
				// own, directors take the CLI's chunks in flight.
				continue
			}
			b.Run(fmt.Sprintf("services=%d/inflight=%d", n, inflight), func(b *testing.B) {
				cmds := tableCommands(n)
				var ack, everywhere []time.Duration
				b.StopTimer()
				for range b.N { // each round on a new cluster: the services exist after one
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
					tc := threeDirectors(ctx, b, false)
					leader := tc.leader()
					nodes := tc.open()
					b.StartTimer()
					t0 := time.Now()
					if err := stageAndCommit(ctx, leader, "restore", cmds, 11_000, inflight); err != nil {
						b.Fatal(err)
					}
					ack = append(ack, time.Since(t0))
					for _, node := range nodes {
						eventuallyFast(b, "the restore applied on "+node.ID(), func() bool {
							var ok bool
							node.View(func(s *fsm.State) { _, ok = s.Service(tableService(n - 1).Name) })
							return ok
						})
					}
					everywhere = append(everywhere, time.Since(t0))
					b.StopTimer()
					for _, id := range []string{"d1", "d2", "d3"} {
						tc.stop(id)
					}
					cancel()
				}
				b.ReportMetric(meanMS(ack), "ack-ms")
				b.ReportMetric(meanMS(everywhere), "everywhere-ms")
			})
		}
	}
}

func meanMS(ds []time.Duration) float64 {
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return float64(sum.Milliseconds()) / float64(len(ds))
}

// eventuallyFast is eventually polling every millisecond, for waits that are measured.
func eventuallyFast(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(pollTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", pollTimeout, what)
		}
		time.Sleep(time.Millisecond)
	}
}
