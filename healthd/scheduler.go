package healthd

import (
	"cmp"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// Defaults of SchedulerConfig.
const (
	// DefaultConcurrency bounds network checks in flight. A check to a dead server holds
	// its slot for its whole timeout, so this is sized for many of them at once.
	DefaultConcurrency = 512
	// DefaultExecConcurrency bounds exec checks in flight: forks are costly and scripts
	// block (keepalived #429, #2546).
	DefaultExecConcurrency = 8
)

// ErrRunning is Run's error when the scheduler already runs.
var ErrRunning = errors.New("health-check scheduler already running")

// SchedulerConfig configures a Scheduler.
type SchedulerConfig struct {
	Logger          *slog.Logger // required
	Concurrency     int          // network checks at once; 0 is DefaultConcurrency
	ExecConcurrency int          // exec checks at once; 0 is DefaultExecConcurrency
	Checkers        CheckerConfig
	Damping         Damping // the zero value is DefaultDamping
	// NewChecker compiles a spec; nil is NewChecker with Checkers. Tests give fakes.
	NewChecker func(*fsm.HealthCheck) (Checker, error)
}

// Scheduler runs the checks of a set of targets, each probe every interval, and keeps
// each real server's tracker. Set replaces the set at any time; Run runs the checks until
// its context ends. It is safe for concurrent use.
type Scheduler struct {
	log        *slog.Logger
	damping    Damping
	newChecker func(*fsm.HealthCheck) (Checker, error)

	wake    chan struct{} // Set → dispatcher
	changed chan struct{} // a verdict changed → the caller

	mu      sync.Mutex
	probes  map[probeKey]*probe
	servers map[fsm.RSKey]*server
	due     dueHeap
	pools   [2]*pool // network, exec
	running bool     // Run is running
	stopped bool     // Run is returning: workers exit
	stats   Stats
}

// pool is a queue of probes due to run and the workers that run them; its size is the
// concurrency limit, and the dispatcher never waits for it.
type pool struct {
	workers int
	queue   []*probe
	cond    *sync.Cond
}

func (p *pool) pop() *probe {
	q := p.queue[0]
	p.queue[0] = nil
	p.queue = p.queue[1:]
	if len(p.queue) == 0 {
		p.queue = p.queue[:0:0] // let the drained array go
	}
	return q
}

// NewScheduler checks the configuration and returns an idle scheduler.
func NewScheduler(cfg SchedulerConfig) (*Scheduler, error) {
	if cfg.Logger == nil {
		return nil, fmt.Errorf("health-check scheduler: no logger: %w", ErrBadConfig)
	}
	if cfg.Concurrency < 0 || cfg.ExecConcurrency < 0 {
		return nil, fmt.Errorf("health-check scheduler: concurrency must not be negative: %w", ErrBadConfig)
	}
	if err := cfg.Damping.Validate(); err != nil {
		return nil, fmt.Errorf("health-check scheduler: %w", err)
	}
	if d := cfg.Checkers.ExecPolicy.Dir; d != "" {
		if !filepath.IsAbs(d) {
			return nil, fmt.Errorf("health-check scheduler: exec-check directory %q is not absolute: %w", d, ErrBadConfig)
		}
		// Checked once here: a spec compiled against a missing directory stays refused.
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("health-check scheduler: exec-check directory %q is not a directory: %w", d, ErrBadConfig)
		}
	}
	s := &Scheduler{
		log:        cfg.Logger,
		damping:    cfg.Damping,
		newChecker: cfg.NewChecker,
		wake:       make(chan struct{}, 1),
		changed:    make(chan struct{}, 1),
		probes:     map[probeKey]*probe{},
		servers:    map[fsm.RSKey]*server{},
	}
	if s.newChecker == nil {
		checkers := cfg.Checkers
		checkers.Hostname = hostname(checkers)
		s.newChecker = func(spec *fsm.HealthCheck) (Checker, error) { return NewChecker(spec, checkers) }
	}
	for i, n := range []int{cmp.Or(cfg.Concurrency, DefaultConcurrency), cmp.Or(cfg.ExecConcurrency, DefaultExecConcurrency)} {
		s.pools[i] = &pool{workers: n, cond: sync.NewCond(&s.mu)}
	}
	return s, nil
}

// Changed is signalled (coalesced, never blocking the scheduler) when a verdict changes:
// a director sends its view then rather than wait for its next period.
func (s *Scheduler) Changed() <-chan struct{} { return s.changed }

// Set replaces the set of targets (Targets of the current state: call it after every
// change). A probe or tracker that stays keeps its schedule, results and penalty; a real
// server whose spec changed keeps its verdict and flap penalty and takes the new rise and
// fall; a new one starts from its committed health.
func (s *Scheduler) Set(targets []Target) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	probes := make(map[probeKey]*probe, len(s.probes))
	servers := make(map[fsm.RSKey]*server, len(targets))
	for _, t := range targets {
		if _, dup := servers[t.Key]; dup || t.Check == nil {
			continue
		}
		srv := s.servers[t.Key]
		same := srv != nil && srv.spec.Equal(t.Check) && srv.probe.key.to == unmapped(t.To)
		var k probeKey
		if same {
			k = srv.probe.key // the usual case after a state change: no need to encode the spec
		} else {
			k = keyOf(t)
		}
		p := probes[k]
		if p == nil {
			p = s.probes[k]
			if p == nil {
				p = s.addProbe(k, t, now)
			}
			p.subs = p.subs[:0]
			probes[k] = p
		}
		switch {
		case srv == nil:
			srv = &server{key: t.Key, tracker: NewTracker(t.Check, t.Health, s.damping, now)}
		case !same:
			srv.tracker.Reconfigure(t.Check)
		}
		srv.spec, srv.probe = t.Check, p
		p.subs = append(p.subs, srv)
		servers[t.Key] = srv
	}
	for k, p := range s.probes {
		if probes[k] == nil {
			p.removed = true
			if p.index >= 0 {
				heap.Remove(&s.due, p.index)
			}
		}
	}
	s.probes, s.servers = probes, servers
	s.stats.Probes, s.stats.Servers = len(probes), len(servers)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Scheduler) addProbe(k probeKey, t Target, now time.Time) *probe {
	c, err := s.newChecker(t.Check)
	if err != nil {
		s.log.Warn("health check cannot run; its real servers are reported down", "addr", t.To.Addr(), "port", t.To.Port(), "type", t.Check.Type, "err", err)
		c = brokenCheck{err: err}
	}
	p := newProbe(k, t.Check, c, now)
	heap.Push(&s.due, p)
	return p
}

// Run runs the checks until ctx ends, then waits for the checks in flight (cancelled by
// ctx) and returns. Only one Run at a time.
func (s *Scheduler) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return fmt.Errorf("run health checks: %w", ErrRunning)
	}
	s.running, s.stopped = true, false
	// Probes set before Run, or left from an earlier one, start afresh: a backlog of
	// due runs would be a thundering herd.
	now := time.Now()
	for _, p := range s.due {
		if p.next.Before(now) {
			p.start(now)
		}
	}
	heap.Init(&s.due)
	s.mu.Unlock()

	var wg sync.WaitGroup
	for _, pl := range s.pools {
		for range pl.workers {
			wg.Go(func() { s.work(ctx, pl) })
		}
	}
	s.dispatch(ctx)

	s.mu.Lock()
	s.stopped = true
	for _, pl := range s.pools {
		pl.cond.Broadcast()
	}
	s.mu.Unlock()
	wg.Wait()

	s.mu.Lock()
	s.running = false
	for _, pl := range s.pools {
		for _, p := range pl.queue {
			p.queued = false
		}
		pl.queue = nil
	}
	s.mu.Unlock()
	return nil
}

// dispatch hands each due probe to its pool and sleeps until the next one is due.
func (s *Scheduler) dispatch(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		s.mu.Lock()
		now := time.Now()
		for len(s.due) > 0 && !s.due[0].next.After(now) {
			s.fire(s.due[0], now)
		}
		var fire <-chan time.Time
		if len(s.due) > 0 {
			timer.Reset(s.due[0].next.Sub(now))
			fire = timer.C
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-fire:
		}
	}
}

// fire queues a due probe, or counts an overrun if its last run has not finished: a slow
// check never piles up behind itself.
func (s *Scheduler) fire(p *probe, now time.Time) {
	if p.queued || p.running {
		p.overruns++
		s.stats.Overruns++
		if p.running && !p.stuckLogged && now.Sub(p.runningSince) > 2*p.timeout+time.Second {
			p.stuckLogged = true
			s.log.Warn("health check still running long past its timeout", "addr", p.key.to.Addr(), "port", p.key.to.Port(),
				"type", p.spec.Type, "running_for", now.Sub(p.runningSince).Round(time.Millisecond), "timeout", p.timeout)
		}
	} else {
		p.queued = true
		pl := s.pools[poolOf(p)]
		pl.queue = append(pl.queue, p)
		pl.cond.Signal()
	}
	s.stats.Behind += p.advance(now)
	heap.Fix(&s.due, p.index)
}

func poolOf(p *probe) int {
	if p.exec {
		return 1
	}
	return 0
}

// work is one worker: it runs queued probes until the scheduler stops.
func (s *Scheduler) work(ctx context.Context, pl *pool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		for len(pl.queue) == 0 && !s.stopped {
			pl.cond.Wait()
		}
		if s.stopped {
			return
		}
		p := pl.pop()
		p.queued = false
		if p.removed {
			continue
		}
		p.running, p.runningSince = true, time.Now()
		s.stats.Running++
		s.mu.Unlock()
		// The scheduler bounds every run by its timeout too, whatever checker it holds.
		cctx, cancel := context.WithTimeout(ctx, p.timeout)
		r := p.checker.Check(cctx, p.key.to)
		cancel()
		s.mu.Lock()
		p.running, p.stuckLogged = false, false
		s.stats.Running--
		if ctx.Err() == nil && !p.removed {
			s.record(p, r, time.Now())
		}
	}
}

// record keeps a probe's result and steps its real servers' trackers.
func (s *Scheduler) record(p *probe, r Result, now time.Time) {
	p.last = r
	p.runs++
	s.stats.Runs++
	if r.Up {
		p.successes, p.failures = p.successes+1, 0
	} else {
		p.failures, p.successes = p.failures+1, 0
	}
	changed := false
	for _, srv := range p.subs {
		if c, ok := srv.tracker.Observe(r, now); ok {
			s.logChange(srv.key, c)
			changed = true
		}
	}
	if changed {
		select {
		case s.changed <- struct{}{}:
		default:
		}
	}
}

// logChange logs this director's own view changing, at debug: the cluster's transition
// is logged once, at info, by the leader that commits it. Damping is this director's
// own decision, and rare: it is logged where it happens.
func (s *Scheduler) logChange(k fsm.RSKey, c Change) {
	attrs := []any{"service", k.Service, "addr", k.Addr, "port", k.Port, "reason", c.Reason}
	switch {
	case c.Held:
		s.log.Warn("real server flapping: held down", attrs...)
	case c.Released:
		s.log.Info("real server up after flap damping", attrs...)
	default:
		s.log.Debug("this director's check changed its view", append(attrs, "health", c.To)...)
	}
}
