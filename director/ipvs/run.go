package ipvs

import (
	"context"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// StateSource is what Run needs of the replicated state; package cluster provides it.
type StateSource interface {
	// View runs fn with the current state, which fn must not keep.
	View(fn func(*fsm.State))
	// Watch returns a channel that receives (coalesced) after each change, and a cancel.
	Watch() (<-chan struct{}, func())
}

// Run reconciles until ctx ends: a full repair pass first, a sync pass after each state
// change, a repair pass every RepairInterval (or less often, see repairDelay). Failures
// are logged and retried on the next pass; Run returns only when ctx is done.
func (r *Reconciler) Run(ctx context.Context, src StateSource) error {
	changed, cancel := src.Watch()
	defer cancel()
	// Watch before the first View, so that no change falls between the two.
	r.syncFrom(src)
	repair := time.NewTimer(r.repairEvery)
	defer repair.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
			r.syncFrom(src)
		case <-repair.C:
			p, _ := r.Repair() // the pass logs and counts its errors
			repair.Reset(r.repairDelay(p.Duration))
		}
	}
}

// repairDelay is the pause after a repair pass that took took: RepairInterval, or ten
// times the pass if that is longer, so that repairs use at most a tenth of the time
// however large the table (dumping 10,000 services costs far more than 100); never more
// than SweepInterval, so drift is still repaired when a pass was slow for another reason
// (recreating a flushed table, waiting behind a status request).
func (r *Reconciler) repairDelay(took time.Duration) time.Duration {
	return min(max(r.repairEvery, 10*took), max(r.sweepEvery, r.repairEvery))
}

// syncFrom reads what changed under the source's lock and programs it after: the kernel
// is never written with the state locked.
func (r *Reconciler) syncFrom(src StateSource) {
	r.passMu.Lock()
	defer r.passMu.Unlock()
	var dirty map[ServiceKey]struct{}
	src.View(func(st *fsm.State) { dirty = r.follow(st) })
	_, _ = r.syncLocked(dirty) // the pass logs and counts its errors
}
