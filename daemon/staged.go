package daemon

import (
	"context"
	"log/slog"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// stagedSweep is how often the leader looks for staged restores nobody finished.
const stagedSweep = time.Minute

// stagedState is the replicated state as the sweep needs it (*cluster.Node).
type stagedState interface {
	View(func(*fsm.State))
	Apply(ctx context.Context, c fsm.Command) error
}

// abortAbandoned is a leader duty: a restore staged in chunks whose client died before
// its commit holds memory on every director; after fsm.StagedTTL without a chunk the
// leader aborts it (the fsm has no clock of its own: the leader's decides).
func abortAbandoned(st stagedState, now func() time.Time, every time.Duration, log *slog.Logger) func(context.Context, func()) error {
	return func(ctx context.Context, started func()) error {
		started()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
			}
			var aborts []fsm.AbortStaged
			st.View(func(s *fsm.State) { aborts = s.AbandonedStaged(now()) })
			for _, a := range aborts {
				if err := st.Apply(ctx, a); err != nil {
					log.Warn("abort an abandoned staged restore", "tx", a.Tx, "err", err)
					continue
				}
				log.Info("aborted an abandoned staged restore", "tx", a.Tx, "idle_over", fsm.StagedTTL)
			}
		}
	}
}
