package cluster

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
	"github.com/raftlvs/raftlvs/pki/pkitest"
)

// BenchmarkCommittedWrites measures acknowledged writes (committed by a quorum, fsync'd
// to bolt on each node, applied on the leader) on a local three-director cluster with the
// default timings: one writer, then 16 concurrent writers (raft batches their entries).
// BenchmarkCommittedWrites measures writes committed by three directors with bolt and
// fsync, over plain TCP and over the mutual TLS that is the default:
//
//	go test -run '^$' -bench CommittedWrites -benchtime 5000x ./cluster
func BenchmarkCommittedWrites(b *testing.B) {
	for _, transport := range []string{"tcp", "tls"} {
		for _, writers := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/writers=%d", transport, writers), func(b *testing.B) {
				benchmarkWrites(b, writers, transport == "tls")
			})
		}
	}
}

// threeDirectors starts a local cluster of three directors with the default timings,
// over TLS if asked.
func threeDirectors(ctx context.Context, b *testing.B, tls bool) *testCluster {
	tc := newTestCluster(b)
	tc.ourDefaults = true
	if tls {
		tc.pki = pkitest.NewCluster(b, "bench")
	}
	d1 := tc.start("d1", true)
	tc.leader(d1)
	tc.established(d1)
	tc.join(ctx, tc.start("d2", false))
	tc.join(ctx, tc.start("d3", false))
	return tc
}

func benchmarkWrites(b *testing.B, writers int, tls bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tc := threeDirectors(ctx, b, tls)
	tc.apply(ctx, fsm.AddService{Service: webService()})
	keys := make([]fsm.RSKey, writers)
	for i := range keys {
		rs := webServer(netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)}).String())
		tc.apply(ctx, fsm.AddRealServer{RealServer: rs})
		keys[i] = rs.Key()
	}
	leader := tc.leader()

	latencies := make([][]time.Duration, writers)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			health := []fsm.Health{fsm.HealthUp, fsm.HealthDown}
			for i := w; i < b.N; i += writers {
				t0 := time.Now()
				// Each write flips a real server's health, so each one changes the state.
				if err := leader.Apply(ctx, fsm.SetHealth{Key: keys[w], Health: health[i/writers%2]}); err != nil {
					b.Errorf("write %d: %v", i, err)
					return
				}
				latencies[w] = append(latencies[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()

	all := slices.Concat(latencies...)
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	pct := func(p float64) float64 {
		return float64(all[min(len(all)-1, int(float64(len(all))*p))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "writes/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// BenchmarkCommitRestore10k commits what `raftlvs restore` of 10,000 services × 10 real
// servers sends, 10 batches of 1,000 services, through the leader of a local three-director
// cluster: prepared on the leader, logged with fsync on each node, applied everywhere.
func BenchmarkCommitRestore10k(b *testing.B) {
	batches := make([]fsm.Batch, 10)
	for i := range 10_000 {
		name := fmt.Sprintf("svc%d", i)
		vip := netip.AddrFrom4([4]byte{10, 100, byte(i >> 8), byte(i)})
		c := &batches[i/1000]
		c.Commands = append(c.Commands, fsm.AddService{Service: fsm.Service{Name: name, Protocol: fsm.TCP, VIP: vip, Port: 80, Scheduler: "wrr", Forwarding: fsm.NAT}})
		for j := range 10 {
			rs := fsm.RealServer{Service: name, Addr: netip.AddrFrom4([4]byte{10, 101, byte(j), 1}), Port: 8080, Weight: 1}
			c.Commands = append(c.Commands, fsm.AddRealServer{RealServer: rs})
		}
	}
	b.StopTimer()
	for range b.N { // each round on a new cluster: the services exist after one
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		tc := threeDirectors(ctx, b, false)
		leader := tc.leader()
		b.StartTimer()
		for i, batch := range batches {
			if err := leader.Apply(ctx, batch); err != nil {
				b.Fatalf("batch %d: %v", i, err)
			}
		}
		b.StopTimer()
		for _, id := range []string{"d1", "d2", "d3"} {
			tc.stop(id)
		}
		cancel()
	}
}
