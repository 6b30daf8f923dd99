package healthd

import (
	"context"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// What a director runs beside its scheduler: Follow keeps the checks in line with the
// replicated state, Report sends the director's verdicts to the leader, and the leader's
// Leader duty (leader.go) turns everyone's verdicts into committed transitions.

// StateSource is the replicated state as the health checks follow it (the cluster node).
type StateSource interface {
	View(func(*fsm.State))
	Watch() (<-chan struct{}, func())
}

// followSettle coalesces a burst of state changes (a restore) into one Set.
const followSettle = 100 * time.Millisecond

// Follow keeps s's targets equal to what the state asks for until ctx ends: at once, then
// after every change.
func Follow(ctx context.Context, s *Scheduler, state StateSource) {
	changes, cancel := state.Watch()
	defer cancel()
	for {
		var targets []Target
		state.View(func(st *fsm.State) { targets = Targets(st) })
		s.Set(targets)
		select {
		case <-ctx.Done():
			return
		case <-changes:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(followSettle):
		}
	}
}

// DefaultReportInterval is how often a director sends its view when nothing changed: the
// leader's freshness window (DefaultFreshness) spans a few of them.
const DefaultReportInterval = 1500 * time.Millisecond

// Report sends this director's view to send on every verdict change and every interval,
// until ctx ends. A failed send is retried at the next one; a director that cannot reach
// the leader simply stops counting once its last view is stale.
func Report(ctx context.Context, s *Scheduler, director string, interval time.Duration, send func(context.Context, View) error) {
	if interval <= 0 {
		interval = DefaultReportInterval
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.Changed():
		case <-tick.C:
		}
		sctx, cancel := context.WithTimeout(ctx, interval)
		_ = send(sctx, s.View(director)) // the sender logs; the next period tries again
		cancel()
	}
}
