package healthd

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// Leader is the health duty of the Raft leader: it keeps the directors' latest views,
// aggregates them with the agents' verdicts, and commits the transitions, one
// fsm.SetHealths per pass. Raw results never reach the log, only verdict changes.
type Leader struct {
	cfg LeaderConfig
	log *slog.Logger

	mu      sync.Mutex
	leading bool
	views   map[string]View
	kick    chan struct{}
	last    Decision // the last pass's, for the operator

	// quietAt is the state version a pass with no votes and no agents' verdicts found
	// nothing to do at (quietKnown: there was one this term). Such a pass depends on the
	// state alone: until the state changes or a vote comes, the next finds nothing too,
	// and a pass over 110,000 real servers every second was a fifth of a leader's CPU in
	// the lab. Only Run's goroutine touches them.
	quietAt    uint64
	quietKnown bool
}

// LeaderConfig wires a Leader.
type LeaderConfig struct {
	Self  string // this director's id
	State StateSource
	// Apply commits a command through Raft (the node's Apply).
	Apply func(ctx context.Context, c fsm.Command) error
	// Agents, if set, lists the agents' own verdicts (from their gossip metadata).
	Agents    func() []AgentVerdict
	Freshness time.Duration // 0: DefaultFreshness
	LoneLimit int           // 0: DefaultLoneLimit
	// Interval is the longest between passes (default 1 s); a new view brings the next
	// pass forward, but passes are never closer than a tenth of it.
	Interval time.Duration
	Now      func() time.Time
	Logger   *slog.Logger
}

// NewLeader returns the duty, idle until Run.
func NewLeader(cfg LeaderConfig) *Leader {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Leader{cfg: cfg, log: cfg.Logger.With("component", "health"), views: map[string]View{}, kick: make(chan struct{}, 1)}
}

// Receive takes a director's view, stamped with the time it arrived (never the sender's
// clock). Views are kept only while this director leads; it reports whether it did.
func (l *Leader) Receive(v View) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.leading {
		return false
	}
	v.At = l.cfg.Now()
	l.views[v.Director] = v
	select {
	case l.kick <- struct{}{}:
	default:
	}
	return true
}

// Views returns the views the leader holds, by director, and its last decision.
func (l *Leader) Views() ([]View, Decision) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]View, 0, len(l.views))
	for _, id := range slices.Sorted(maps.Keys(l.views)) {
		out = append(out, l.views[id])
	}
	return out, l.last
}

// Leading reports whether the duty runs (this director leads and has started it).
func (l *Leader) Leading() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.leading
}

// Run is the leader duty: a pass at least every Interval, sooner after a view arrives.
// Each term starts with no views: the directors send theirs within a report interval.
func (l *Leader) Run(ctx context.Context, started func()) error {
	l.mu.Lock()
	l.leading, l.views, l.last = true, map[string]View{}, Decision{}
	l.mu.Unlock()
	l.quietKnown = false
	defer func() {
		l.mu.Lock()
		l.leading = false
		l.mu.Unlock()
	}()
	started()
	warnings := NewWarningLog(l.log)
	tick := time.NewTicker(l.cfg.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-l.kick:
		}
		d := l.pass(ctx)
		warnings.Report(d.Warnings)
		// Passes no closer than a tenth of the interval: a burst of views is one pass.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(l.cfg.Interval / 10):
		}
	}
}

// pass aggregates once and commits what changed.
func (l *Leader) pass(ctx context.Context) Decision {
	l.mu.Lock()
	views := slices.Collect(maps.Values(l.views))
	l.mu.Unlock()
	var agents []AgentVerdict
	if l.cfg.Agents != nil {
		agents = l.cfg.Agents()
	}
	quiet := len(agents) == 0 && !slices.ContainsFunc(views, func(v View) bool { return len(v.Servers) > 0 })
	var d Decision
	skipped := false
	l.cfg.State.View(func(st *fsm.State) {
		if skipped = quiet && l.quietKnown && l.quietAt == st.Version(); skipped {
			return
		}
		d = Aggregate(Aggregation{State: st, Leader: l.cfg.Self, Views: views, Agents: agents,
			Now: l.cfg.Now(), Freshness: l.cfg.Freshness, LoneLimit: l.cfg.LoneLimit})
		l.quietAt, l.quietKnown = st.Version(), quiet && d.Empty() && len(d.Warnings) == 0
	})
	if skipped {
		return Decision{}
	}
	l.mu.Lock()
	l.last = d
	l.mu.Unlock()
	if d.Empty() {
		return d
	}
	if err := l.cfg.Apply(ctx, d.Command); err != nil {
		if ctx.Err() == nil {
			l.log.Warn("commit health transitions; the next pass tries again", "transitions", len(d.Command.Updates), "err", err)
		}
		return d
	}
	for _, u := range d.Command.Updates {
		l.log.Info("real server health", "service", u.Key.Service, "addr", u.Key.Addr, "port", u.Key.Port, "health", u.Health, "reason", u.Reason)
	}
	return d
}
