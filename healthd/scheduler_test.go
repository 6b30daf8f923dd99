package healthd

import (
	"context"
	"encoding/json"
	"errors"

	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// The scheduler tests run inside testing/synctest bubbles with fake checkers: time is a
// fake clock that jumps to the next wake-up once every goroutine is blocked, so schedules
// are exact, nothing waits in real time, and a goroutine left behind fails the test.

// fakeChecks is a checker factory whose checks record their calls.
type fakeChecks struct {
	mu          sync.Mutex
	calls       map[netip.AddrPort][]time.Time
	inFlight    map[netip.AddrPort]int
	total       int // in flight, all probes
	maxTotal    int
	maxPerProbe int
	compiled    int

	takes     time.Duration // how long each check runs
	ignoreCtx bool          // keep running past the deadline (a broken checker)
	gate      chan struct{} // if set, checks wait for it to close (or their ctx)
	down      map[netip.AddrPort]bool
}

func newFakeChecks() *fakeChecks {
	return &fakeChecks{calls: map[netip.AddrPort][]time.Time{}, inFlight: map[netip.AddrPort]int{}, down: map[netip.AddrPort]bool{}}
}

func (f *fakeChecks) compile(*fsm.HealthCheck) (Checker, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.compiled++
	return fakeChecker{f}, nil
}

type fakeChecker struct{ f *fakeChecks }

func (c fakeChecker) Check(ctx context.Context, to netip.AddrPort) Result {
	f := c.f
	f.mu.Lock()
	f.calls[to] = append(f.calls[to], time.Now())
	f.inFlight[to]++
	f.total++
	f.maxTotal, f.maxPerProbe = max(f.maxTotal, f.total), max(f.maxPerProbe, f.inFlight[to])
	takes, gate, ignore, isDown := f.takes, f.gate, f.ignoreCtx, f.down[to]
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight[to]--
		f.total--
		f.mu.Unlock()
	}()
	start := time.Now()
	done := ctx.Done()
	if ignore {
		done = nil
	}
	if gate != nil {
		select {
		case <-gate:
		case <-done:
			return down(ErrTimeout, ctx.Err(), "timeout")
		}
	}
	if takes > 0 {
		select {
		case <-time.After(takes):
		case <-done:
			return down(ErrTimeout, ctx.Err(), "timeout")
		}
	}
	if isDown {
		r := down(ErrRefused, nil, "connect: connection refused")
		r.At = start
		return r
	}
	return Result{Up: true, Reason: "connected", At: start}
}

func (f *fakeChecks) count(to netip.AddrPort) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls[to])
}

func (f *fakeChecks) setDown(to netip.AddrPort, down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down[to] = down
}

// rig is a running scheduler over fake checks.
type rig struct {
	t     *testing.T
	s     *Scheduler
	f     *fakeChecks
	start time.Time
	stop  func()
	log   *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// newRig builds a scheduler over f and starts it; call inside a bubble, and r.stop()
// before the bubble ends.
func newRig(t *testing.T, cfg SchedulerConfig, f *fakeChecks) *rig {
	t.Helper()
	r := &rig{t: t, f: f, log: &lockedBuffer{}}
	cfg.Logger = textLogger(r.log)
	cfg.NewChecker = f.compile
	s, err := NewScheduler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.s, r.start = s, time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	r.stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	return r
}

// next lets fake time pass to the next run of the only probe, and that run complete.
func (r *rig) next() {
	time.Sleep(time.Until(r.s.Status().Probes[0].NextRun))
	synctest.Wait()
}

// advance lets d of fake time pass and waits for the scheduler to settle.
func advance(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

// target is real server i of service svc, checked with a tcp check every interval.
func target(svc string, i int, interval time.Duration, edit func(*fsm.HealthCheck)) Target {
	c := &fsm.HealthCheck{Type: fsm.CheckTCP, IntervalMS: int(interval / time.Millisecond), TimeoutMS: int(interval / 2 / time.Millisecond)}
	if edit != nil {
		edit(c)
	}
	addr := netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})
	return Target{Key: fsm.RSKey{Service: svc, Addr: addr, Port: 80}, To: netip.AddrPortFrom(addr, 80), Check: c}
}

func TestSchedulerRunsEachProbeOncePerInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeChecks()
		r := newRig(t, SchedulerConfig{}, f)
		defer r.stop()
		a, b := target("web", 1, time.Second, nil), target("web", 2, 3*time.Second, nil)
		r.s.Set([]Target{a, b})
		advance(30 * time.Second)
		// The first run falls within the first interval, the rest one an interval apart
		// (plus up to a tenth of it of jitter).
		if n := f.count(a.To); n < 29 || n > 30 {
			t.Errorf("a 1 s check ran %d times in 30 s", n)
		}
		if n := f.count(b.To); n < 9 || n > 10 {
			t.Errorf("a 3 s check ran %d times in 30 s", n)
		}
		calls := f.calls[a.To]
		for i := 1; i < len(calls); i++ {
			if gap := calls[i].Sub(calls[i-1]); gap < 900*time.Millisecond || gap > 1100*time.Millisecond {
				t.Errorf("runs %d and %d are %v apart, want the interval ± its jitter", i-1, i, gap)
			}
		}
	})
}

func TestSchedulerRunsOneProbeForIdenticalChecks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeChecks()
		r := newRig(t, SchedulerConfig{}, f)
		defer r.stop()
		web := target("web", 1, time.Second, nil)
		api := target("api", 1, time.Second, func(c *fsm.HealthCheck) { c.Rise, c.Fall = 5, 1 }) // rise and fall are not the probe's
		other := target("admin", 1, time.Second, func(c *fsm.HealthCheck) { c.Type, c.Path = fsm.CheckHTTP, "/admin" })
		r.s.Set([]Target{web, api, other})
		advance(10 * time.Second)

		st := r.s.Status()
		if st.Stats.Probes != 2 || st.Stats.Servers != 3 || f.compiled != 2 {
			t.Fatalf("%d probes (%d compiled) for %d servers, want 2 probes for 3", st.Stats.Probes, f.compiled, st.Stats.Servers)
		}
		var shared ProbeStatus
		for _, p := range st.Probes {
			if p.Type == fsm.CheckTCP {
				shared = p
			}
		}
		if want := []fsm.RSKey{api.Key, web.Key}; !reflect.DeepEqual(shared.Servers, want) {
			t.Errorf("the tcp probe serves %v, want %v", shared.Servers, want)
		}
		if n := f.count(web.To); n < 19 || n > 21 {
			t.Errorf("the address was probed %d times in 10 s by two probes, want about 20 (one per probe per second)", n)
		}
		for _, sv := range r.s.View("d1").Servers {
			if sv.Health != fsm.HealthUp {
				t.Errorf("%v: %s, want every subscriber to have the shared result", sv.RSKey, sv.Health)
			}
		}
	})
}

func TestSchedulerSpreadsFirstRunsOverTheInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeChecks()
		r := newRig(t, SchedulerConfig{}, f)
		var targets []Target
		for i := 1; i <= 200; i++ {
			targets = append(targets, target("web", i, 2*time.Second, nil))
		}
		r.s.Set(targets)
		advance(1999 * time.Millisecond)
		first := map[netip.AddrPort]time.Duration{}
		buckets := make([]int, 10)
		for _, tg := range targets {
			calls := f.calls[tg.To]
			if len(calls) != 1 {
				t.Fatalf("%v ran %d times in its first interval, want once", tg.To, len(calls))
			}
			off := calls[0].Sub(r.start)
			first[tg.To] = off
			buckets[off*10/(2*time.Second)]++
		}
		for i, n := range buckets {
			if n > 40 { // 20 each if even; a herd would put them all in one
				t.Errorf("%d of 200 first runs in tenth %d of the interval: %v", n, i, buckets)
			}
		}
		r.stop()

		// The offsets are the targets': another scheduler places them the same.
		f2 := newFakeChecks()
		r2 := newRig(t, SchedulerConfig{}, f2)
		defer r2.stop()
		r2.s.Set(targets)
		advance(1999 * time.Millisecond)
		for _, tg := range targets {
			if got := f2.calls[tg.To][0].Sub(r2.start); got != first[tg.To] {
				t.Fatalf("%v first ran at %v, and at %v in another scheduler", tg.To, got, first[tg.To])
			}
		}
	})
}

func TestSchedulerSetBeforeRunDoesNotStartAHerd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeChecks()
		s, err := NewScheduler(SchedulerConfig{Logger: slog.New(slog.DiscardHandler), NewChecker: f.compile})
		if err != nil {
			t.Fatal(err)
		}
		var targets []Target
		for i := 1; i <= 50; i++ {
			targets = append(targets, target("web", i, time.Second, nil))
		}
		s.Set(targets)
		time.Sleep(time.Hour) // set long before the scheduler runs
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- s.Run(ctx) }()
		synctest.Wait()
		started := 0
		for _, tg := range targets {
			started += f.count(tg.To)
		}
		if started > 5 {
			t.Errorf("%d of 50 checks ran the moment Run started, want them spread over the interval", started)
		}
		cancel()
		<-done
	})
}

func TestSchedulerLimitsConcurrency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeChecks()
		f.gate, f.ignoreCtx = make(chan struct{}), true // they run until the gate opens
		r := newRig(t, SchedulerConfig{Concurrency: 3, ExecConcurrency: 1}, f)
		defer r.stop()
		var targets []Target
		for i := 1; i <= 10; i++ {
			targets = append(targets, target("web", i, 10*time.Second, func(c *fsm.HealthCheck) { c.TimeoutMS = 9000 }))
		}
		var execs []Target
		for i := 11; i <= 13; i++ {
			execs = append(execs, target("web", i, 10*time.Second, func(c *fsm.HealthCheck) {
				c.Type, c.Command, c.TimeoutMS = fsm.CheckExec, []string{"/usr/lib/raftlvs/check"}, 9000
			}))
		}
		r.s.Set(append(targets, execs...))
		advance(9999 * time.Millisecond) // every probe has come due once
		st := r.s.Stats()
		if f.total != 4 || st.Running != 4 || st.Queued != 9 {
			t.Errorf("%d checks in flight (stats: %d running, %d queued), want 3 network + 1 exec, 7 + 2 queued", f.total, st.Running, st.Queued)
		}
		close(f.gate)
		advance(time.Second)
		if f.maxTotal != 4 {
			t.Errorf("at most %d checks ran at once, want the limits' 3 + 1", f.maxTotal)
		}
		for _, tg := range append(targets, execs...) {
			if f.count(tg.To) == 0 {
				t.Errorf("%v never ran", tg.To)
			}
		}
	})
}

func TestSchedulerNeverOverlapsASlowCheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeChecks()
		f.takes, f.ignoreCtx = 2500*time.Millisecond, true // a checker that overstays its deadline
		r := newRig(t, SchedulerConfig{}, f)
		defer r.stop()
		tg := target("web", 1, time.Second, nil)
		r.s.Set([]Target{tg})
		advance(20 * time.Second)
		if f.maxPerProbe != 1 {
			t.Errorf("%d runs of one probe at once, want 1", f.maxPerProbe)
		}
		st := r.s.Status()
		p := st.Probes[0]
		if p.Overruns < 10 || st.Stats.Overruns != p.Overruns {
			t.Errorf("overruns: probe %d, scheduler %d; want the runs skipped (about 2 of every 3)", p.Overruns, st.Stats.Overruns)
		}
		if n := f.count(tg.To); n < 6 || n > 8 {
			t.Errorf("%d runs in 20 s of a 2.5 s check every 1 s, want about 7 (one every 3 s)", n)
		}
		if n := strings.Count(r.log.String(), "still running long past its timeout"); n < 1 {
			t.Errorf("a check running past twice its timeout was not logged:\n%s", r.log.String())
		}
	})
}

func TestSchedulerStatusShowsAStuckCheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeChecks()
		f.gate, f.ignoreCtx = make(chan struct{}), true
		r := newRig(t, SchedulerConfig{}, f)
		defer r.stop()
		r.s.Set([]Target{target("web", 1, time.Second, nil)})
		advance(time.Minute)
		p := r.s.Status().Probes[0]
		if !p.Stuck(time.Now()) || p.RunningSince.IsZero() || !p.LastRun.IsZero() {
			t.Errorf("status %+v: want a stuck run, running since the first minute, and no completed run", p)
		}
		if n := strings.Count(r.log.String(), "still running long past its timeout"); n != 1 {
			t.Errorf("the stuck check was logged %d times, want once per stuck run", n)
		}
		close(f.gate)
		synctest.Wait()
	})
}

func TestSchedulerStopsCleanly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeChecks()
		f.gate = make(chan struct{}) // checks block until cancelled
		r := newRig(t, SchedulerConfig{Concurrency: 4}, f)
		var targets []Target
		for i := 1; i <= 8; i++ {
			targets = append(targets, target("web", i, time.Second, func(c *fsm.HealthCheck) { c.TimeoutMS = 1000 }))
		}
		r.s.Set(targets)
		advance(999 * time.Millisecond)
		if f.total != 4 {
			t.Fatalf("%d checks in flight, want 4", f.total)
		}
		if err := r.s.Run(context.Background()); !errors.Is(err, ErrRunning) {
			t.Errorf("a second Run: %v, want ErrRunning", err)
		}
		r.stop() // returns only once the checks in flight are cancelled and the workers gone
		if f.total != 0 {
			t.Errorf("%d checks still in flight after Run returned", f.total)
		}
		runs := r.s.Stats().Runs

		// A stopped scheduler can run again, with its targets.
		f.gate = nil
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- r.s.Run(ctx) }()
		advance(2 * time.Second)
		cancel()
		<-done
		if r.s.Stats().Runs <= runs {
			t.Error("a restarted scheduler ran nothing")
		}
	})
}

func TestSchedulerSetKeepsWhatStaysAndDropsWhatGoes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeChecks()
		r := newRig(t, SchedulerConfig{}, f)
		defer r.stop()
		a, b := target("web", 1, time.Second, nil), target("web", 2, time.Second, nil)
		f.setDown(a.To, true)
		r.s.Set([]Target{a, b})
		advance(5 * time.Second)
		if v := r.s.View("d1").Servers[0]; v.Health != fsm.HealthDown {
			t.Fatalf("a after 5 failures: %s", v.Health)
		}

		// Removing b stops its checks; a's rise and fall change: same probe, same verdict.
		a2 := a
		a2.Check = a.Check.Clone()
		a2.Check.Rise = 4
		r.s.Set([]Target{a2})
		before := f.count(b.To)
		advance(5 * time.Second)
		if n := f.count(b.To); n != before {
			t.Errorf("a removed target ran %d more times", n-before)
		}
		if f.compiled != 2 {
			t.Errorf("%d probes compiled, want a rise change to keep a's probe", f.compiled)
		}
		f.setDown(a.To, false)
		advance(3 * time.Second)
		if v := r.s.View("d1").Servers[0]; v.Health != fsm.HealthDown {
			t.Errorf("a after 3 successes with rise 4: %s, want still down", v.Health)
		}

		// A changed probe spec is a new probe; the real server keeps its verdict.
		a3 := a2
		a3.Check = a2.Check.Clone()
		a3.Check.Type, a3.Check.Path = fsm.CheckHTTP, "/ready"
		r.s.Set([]Target{a3})
		if v := r.s.View("d1").Servers[0]; v.Health != fsm.HealthDown {
			t.Errorf("after a spec change: %s, want the verdict kept", v.Health)
		}
		advance(2 * time.Second)
		if f.compiled != 3 || r.s.Stats().Probes != 1 {
			t.Errorf("%d compiled, %d probes: want the new spec compiled and the old probe gone", f.compiled, r.s.Stats().Probes)
		}
		if v := r.s.View("d1").Servers[0]; v.Health != fsm.HealthUp {
			t.Errorf("after rise successes on the new probe: %s, want up", v.Health)
		}
	})
}

func TestSchedulerStepsTrackersAndSignalsChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeChecks()
		r := newRig(t, SchedulerConfig{}, f)
		defer r.stop()
		tg := target("web", 1, time.Second, func(c *fsm.HealthCheck) { c.Fall = 3 })
		tg.Health = fsm.HealthUp
		r.s.Set([]Target{tg})
		f.setDown(tg.To, true)
		r.next()
		r.next() // two failures: still up
		select {
		case <-r.s.Changed():
			t.Fatal("signalled before any change")
		default:
		}
		r.next() // the third
		select {
		case <-r.s.Changed():
		default:
			t.Fatal("the down was not signalled")
		}
		v := r.s.View("d1")
		if len(v.Servers) != 1 || v.Servers[0].Health != fsm.HealthDown || v.Servers[0].Reason != "connect: connection refused" {
			t.Errorf("view %+v, want the server down with the check's reason", v)
		}
		srv := r.s.Status().Servers[0]
		if srv.Failures != 3 || srv.Health != fsm.HealthDown {
			t.Errorf("status %+v, want 3 failures in a row", srv)
		}
		if n := strings.Count(r.log.String(), "health=down"); n != 1 {
			t.Errorf("logged the down %d times, want once:\n%s", n, r.log.String())
		}
		advance(10 * time.Second)
		if n := strings.Count(r.log.String(), "health=down"); n != 1 {
			t.Errorf("more failures logged the down again (%d times)", n)
		}
	})
}

func TestSchedulerReportsACheckThatCannotRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf lockedBuffer
		dir := t.TempDir()
		s, err := NewScheduler(SchedulerConfig{Logger: textLogger(&buf), Checkers: CheckerConfig{ExecPolicy: ExecPolicy{Dir: dir}}})
		if err != nil {
			t.Fatal(err)
		}
		tg := target("web", 1, time.Second, func(c *fsm.HealthCheck) { c.Type, c.Command = fsm.CheckExec, []string{"/bin/true"} })
		s.Set([]Target{tg})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- s.Run(ctx) }()
		advance(5 * time.Second)
		cancel()
		<-done
		v := s.View("d1").Servers[0]
		if v.Health != fsm.HealthDown || !strings.Contains(v.Reason, "is outside "+dir) {
			t.Errorf("view %+v, want down saying the policy refused the command", v)
		}
		if n := strings.Count(buf.String(), "health check cannot run"); n != 1 {
			t.Errorf("logged %d times, want once when the target was set:\n%s", n, buf.String())
		}
	})
}

func TestViewRoundTripsThroughJSON(t *testing.T) {
	w := 5
	v := View{Director: "d1", At: t0, Servers: []ServerView{
		{RSKey: rsKey(1), Health: fsm.HealthDown, Reason: "HTTP 503", Since: t0.Add(-time.Minute)},
		{RSKey: rsKey(2), Health: fsm.HealthUp, Reason: "exit 7 (weight 5)", Since: t0, Weight: &w},
	}}
	js, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), `"service":"web","addr":"198.51.100.1","port":80,"health":"down"`) {
		t.Errorf("a server's key is not flat in %s", js)
	}
	var back View
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, v) {
		t.Errorf("round trip:\n%+v\nwant\n%+v", back, v)
	}
}

func TestNewSchedulerRefusesABadConfiguration(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, cfg := range []SchedulerConfig{
		{},
		{Logger: log, Concurrency: -1},
		{Logger: log, Damping: Damping{Reuse: 3000}},
		{Logger: log, Checkers: CheckerConfig{ExecPolicy: ExecPolicy{Dir: "checks"}}},
		{Logger: log, Checkers: CheckerConfig{ExecPolicy: ExecPolicy{Dir: filepath.Join(t.TempDir(), "missing")}}},
	} {
		if _, err := NewScheduler(cfg); !errors.Is(err, ErrBadConfig) {
			t.Errorf("NewScheduler(%+v) = %v, want ErrBadConfig", cfg, err)
		}
	}
}
