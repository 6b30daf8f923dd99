package healthd

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// Benchmarks print figures; nothing asserts on them. The figures in DESIGN.md come from
//
//	go test -run '^$' -bench 'SchedulerTCP' -benchtime 100000x ./healthd/
//	go test -run '^$' -bench 'TCPCheck|Memory|SetUnchanged|Aggregate' -benchtime 5s ./healthd/

// farmTargets returns n distinct tcp probes over the farm's ports: a port's probes differ
// by their timeout (40..49 % of the interval), which a successful check never reaches.
func farmTargets(ports []netip.AddrPort, n int, interval time.Duration) []Target {
	var out []Target
	for i := range n {
		to, k := ports[i%len(ports)], i/len(ports)
		timeout := interval * time.Duration(40+k%10) / 100
		c := &fsm.HealthCheck{Type: fsm.CheckTCP, IntervalMS: int(interval / time.Millisecond), TimeoutMS: int(timeout / time.Millisecond)}
		key := fsm.RSKey{Service: fmt.Sprintf("svc%d", k), Addr: to.Addr(), Port: to.Port()}
		out = append(out, Target{Key: key, To: to, Check: c})
	}
	return out
}

// cpuTime is this process's CPU time so far: user and system (the kernel's share of a
// loopback TCP handshake is most of a check's cost).
func cpuTime() (user, sys time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

// BenchmarkSchedulerTCP runs 10,000 tcp probes against loopback listeners in another
// process at an offered rate, for b.N checks, and reports the rate sustained and the CPU
// this process (scheduler and checkers) used for it.
func BenchmarkSchedulerTCP(b *testing.B) {
	ports := farm(b, 1000)
	const probes = 10000
	for _, interval := range []time.Duration{time.Second, 500 * time.Millisecond, 250 * time.Millisecond} {
		offered := int(probes * time.Second / interval)
		b.Run(fmt.Sprintf("offered=%d/s", offered), func(b *testing.B) {
			s, err := NewScheduler(SchedulerConfig{Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			s.Set(farmTargets(ports, probes, interval))
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error)
			go func() { done <- s.Run(ctx) }()
			defer func() { cancel(); <-done }()
			for s.Stats().Runs < probes { // the first round, spread over an interval
				time.Sleep(10 * time.Millisecond)
			}

			b.ReportAllocs()
			b.ResetTimer()
			start, st0 := time.Now(), s.Stats()
			user0, sys0 := cpuTime()
			for s.Stats().Runs-st0.Runs < uint64(b.N) {
				time.Sleep(10 * time.Millisecond)
			}
			elapsed, st := time.Since(start), s.Stats()
			user1, sys1 := cpuTime()
			b.StopTimer()
			cpu := user1 - user0 + sys1 - sys0

			runs := float64(st.Runs - st0.Runs)
			b.ReportMetric(runs/elapsed.Seconds(), "checks/s")
			b.ReportMetric(cpu.Seconds()/elapsed.Seconds(), "cores")
			b.ReportMetric(float64(cpu.Microseconds())/runs, "cpu-µs/check")
			b.ReportMetric(float64(sys1-sys0)/float64(cpu), "kernel-share")
			b.ReportMetric(float64(st.Overruns-st0.Overruns+st.Behind-st0.Behind), "skipped")
			failing := 0
			for _, p := range s.Status().Probes {
				if !p.Up {
					failing++
				}
			}
			b.ReportMetric(float64(failing), "failing") // a starved machine times checks out
		})
	}
}

// BenchmarkTCPCheck is one tcp check against a loopback listener in another process.
func BenchmarkTCPCheck(b *testing.B) {
	to := farm(b, 1)[0]
	c, err := NewChecker(&fsm.HealthCheck{Type: fsm.CheckTCP}, CheckerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if r := c.Check(context.Background(), to); !r.Up {
			b.Fatal(r.Reason)
		}
	}
}

// BenchmarkSchedulerMemory is what 10,000 probes cost to set (allocations per Set) and to
// hold (the heap they keep, per 10,000).
func BenchmarkSchedulerMemory(b *testing.B) {
	ports := make([]netip.AddrPort, 10000)
	for i := range ports {
		ports[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 80)
	}
	targets := farmTargets(ports, 10000, 2*time.Second)
	var before, after runtime.MemStats
	var keep *Scheduler
	b.ReportAllocs()
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&before)
		s, err := NewScheduler(SchedulerConfig{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		s.Set(targets)
		keep = s
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "heap-MiB/10k-probes")
	runtime.KeepAlive(keep)
}

// BenchmarkSchedulerSetUnchanged is the Set the director calls after each state change,
// when the 10,000 targets are what they were.
func BenchmarkSchedulerSetUnchanged(b *testing.B) {
	ports := make([]netip.AddrPort, 10000)
	for i := range ports {
		ports[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 80)
	}
	targets := farmTargets(ports, 10000, 2*time.Second)
	s, err := NewScheduler(SchedulerConfig{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	s.Set(targets)
	b.ReportAllocs()
	for b.Loop() {
		s.Set(targets)
	}
}

// BenchmarkAggregate is one leader decision over 10,000 real servers and three views.
func BenchmarkAggregate(b *testing.B) {
	cmds := []fsm.Command{director("d1", false), director("d2", false), director("d3", false)}
	var servers []ServerView
	for i := range 100 {
		name := fmt.Sprintf("svc%d", i)
		cmds = append(cmds, fsm.AddService{Service: fsm.Service{Name: name, Protocol: fsm.TCP, VIP: netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), Port: 80,
			Family: fsm.IPv4, HealthCheck: &fsm.HealthCheck{Type: fsm.CheckTCP}, FailOpenPercent: 50}})
		for j := range 100 {
			k := fsm.RSKey{Service: name, Addr: netip.AddrFrom4([4]byte{10, 2, byte(i), byte(j)}), Port: 80}
			cmds = append(cmds, fsm.AddRealServer{RealServer: fsm.RealServer{Service: name, Addr: k.Addr, Port: k.Port, Weight: 1}})
			h := fsm.HealthUp
			if j%10 == 0 {
				h = fsm.HealthDown
			}
			servers = append(servers, ServerView{RSKey: k, Health: h, Reason: "connected"})
		}
	}
	in := Aggregation{State: prepared(b, cmds...), Leader: "d1", Now: t0}
	for _, id := range []string{"d1", "d2", "d3"} {
		in.Views = append(in.Views, View{Director: id, At: t0, Servers: servers})
	}
	b.ReportAllocs()
	for b.Loop() {
		if d := Aggregate(in); len(d.Command.Updates) != 10000 {
			b.Fatalf("%d updates", len(d.Command.Updates))
		}
	}
}

// BenchmarkQuietLeaderPass is the leader's pass over 10,000 services × 10 that no
// director checks, every second while nothing changes: weighed once, then skipped.
func BenchmarkQuietLeaderPass(b *testing.B) {
	cmds := []fsm.Command{director("d1", false), director("d2", false), director("d3", false)}
	for i := range 10_000 {
		name := fmt.Sprintf("svc%d", i)
		cmds = append(cmds, fsm.AddService{Service: fsm.Service{Name: name, Protocol: fsm.TCP,
			VIP: netip.AddrFrom4([4]byte{192, 0, byte(i >> 8), byte(i)}), Port: 80, Family: fsm.IPv4}})
		for j := range 10 {
			cmds = append(cmds, fsm.AddRealServer{RealServer: fsm.RealServer{Service: name, Addr: netip.AddrFrom4([4]byte{10, byte(j), byte(i >> 8), byte(i)}), Port: 80, Weight: 1}})
		}
	}
	st := &leaderState{st: prepared(b, cmds...)}
	l := NewLeader(LeaderConfig{Self: "d1", State: st, Apply: st.Apply, Logger: slog.New(slog.DiscardHandler)})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if d := l.pass(ctx); !d.Empty() {
			b.Fatal(d.Command)
		}
	}
}
