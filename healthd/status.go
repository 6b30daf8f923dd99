package healthd

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// Stats are the scheduler's counters.
type Stats struct {
	Probes   int    `json:"probes"`   // distinct checks scheduled
	Servers  int    `json:"servers"`  // real servers they decide for
	Queued   int    `json:"queued"`   // due, waiting for a free slot
	Running  int    `json:"running"`  // in flight
	Runs     uint64 `json:"runs"`     // checks completed
	Overruns uint64 `json:"overruns"` // runs skipped: the previous one had not finished
	Behind   uint64 `json:"behind"`   // runs skipped: the scheduler was a whole interval late
}

// Stats reads the counters.
func (s *Scheduler) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Queued = len(s.pools[0].queue) + len(s.pools[1].queue)
	return st
}

// ProbeStatus is one probe as an operator sees it: a checker that stopped running shows
// as a LastRun far behind NextRun, or a RunningSince far in the past (keepalived #2523).
type ProbeStatus struct {
	To           netip.AddrPort `json:"to"`
	Type         fsm.CheckType  `json:"type"`
	Interval     time.Duration  `json:"interval"`
	Timeout      time.Duration  `json:"timeout"`
	Servers      []fsm.RSKey    `json:"servers"`
	Queued       bool           `json:"queued,omitempty"`
	RunningSince time.Time      `json:"running_since,omitzero"` // zero when not running
	NextRun      time.Time      `json:"next_run"`
	LastRun      time.Time      `json:"last_run,omitzero"` // when the last completed run started
	Up           bool           `json:"up"`
	Reason       string         `json:"reason,omitempty"`
	Latency      time.Duration  `json:"latency"`
	Successes    int            `json:"successes"` // in a row
	Failures     int            `json:"failures"`  // in a row
	Runs         uint64         `json:"runs"`
	Overruns     uint64         `json:"overruns"`
}

// Stuck reports a run in progress for more than twice its timeout: a checker that does not
// honour its deadline.
func (p ProbeStatus) Stuck(now time.Time) bool {
	return !p.RunningSince.IsZero() && now.Sub(p.RunningSince) > 2*p.Timeout
}

// ServerStatus is one real server's tracker and the probe that feeds it.
type ServerStatus struct {
	Key fsm.RSKey      `json:"key"`
	To  netip.AddrPort `json:"to"`
	TrackerStatus
}

// Status is everything the scheduler knows, ordered by address and by real server.
type Status struct {
	Stats   Stats          `json:"stats"`
	Probes  []ProbeStatus  `json:"probes"`
	Servers []ServerStatus `json:"servers"`
}

// Status reads the scheduler.
func (s *Scheduler) Status() Status {
	st := Status{Stats: s.Stats()}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for _, p := range s.probes {
		ps := ProbeStatus{
			To: p.key.to, Type: p.spec.Type, Interval: p.interval, Timeout: p.timeout,
			Queued: p.queued, NextRun: p.next, Up: p.last.Up, Reason: p.last.Reason, Latency: p.last.Latency,
			LastRun: p.last.At, Successes: p.successes, Failures: p.failures, Runs: p.runs, Overruns: p.overruns,
		}
		if p.running {
			ps.RunningSince = p.runningSince
		}
		for _, srv := range p.subs {
			ps.Servers = append(ps.Servers, srv.key)
		}
		slices.SortFunc(ps.Servers, compareKeys)
		st.Probes = append(st.Probes, ps)
	}
	slices.SortFunc(st.Probes, func(a, b ProbeStatus) int {
		return cmp.Or(a.To.Compare(b.To), cmp.Compare(a.Type, b.Type), cmp.Compare(a.Interval, b.Interval))
	})
	for _, srv := range s.servers {
		st.Servers = append(st.Servers, ServerStatus{Key: srv.key, To: srv.probe.key.to, TrackerStatus: srv.tracker.Status(now)})
	}
	slices.SortFunc(st.Servers, func(a, b ServerStatus) int { return compareKeys(a.Key, b.Key) })
	return st
}

// View is what a director reports to the leader: its verdict on every real server it
// checks. The director's follower code sends it; the leader feeds the views to Aggregate.
type View struct {
	Director string `json:"director"`
	// At is when the view was taken. The leader replaces it with the time the view
	// reached it, so that freshness never depends on two directors' clocks agreeing.
	At      time.Time    `json:"at"`
	Servers []ServerView `json:"servers"`
}

// ServerView is one real server in a view.
type ServerView struct {
	fsm.RSKey
	Health fsm.Health `json:"health"` // unknown: no word yet (abstains)
	Reason string     `json:"reason,omitempty"`
	Since  time.Time  `json:"since,omitzero"`
	Weight *int       `json:"weight,omitempty"` // a dynamic weight from an exec check
}

// View builds this director's view from its trackers, ordered by real server.
func (s *Scheduler) View(director string) View {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := View{Director: director, At: time.Now(), Servers: make([]ServerView, 0, len(s.servers))}
	for _, srv := range s.servers {
		vd := srv.tracker.Verdict()
		sv := ServerView{RSKey: srv.key, Health: vd.Health, Reason: vd.Reason, Since: vd.Since}
		if vd.HasWeight {
			w := vd.Weight
			sv.Weight = &w
		}
		v.Servers = append(v.Servers, sv)
	}
	slices.SortFunc(v.Servers, func(a, b ServerView) int { return compareKeys(a.RSKey, b.RSKey) })
	return v
}
