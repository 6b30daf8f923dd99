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
// change, a repair pass every RepairInterval. Failures are logged and retried on the next
// pass; Run returns only when ctx is done.
func (r *Reconciler) Run(ctx context.Context, src StateSource) error {
	changed, cancel := src.Watch()
	defer cancel()
	// Watch before the first View, so that no change falls between the two.
	r.syncFrom(src)
	tick := time.NewTicker(r.repairEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
			r.syncFrom(src)
		case <-tick.C:
			_, _ = r.Repair() // the pass logs and counts its errors
		}
	}
}

func (r *Reconciler) syncFrom(src StateSource) {
	var desired Table
	src.View(func(st *fsm.State) { desired = Desired(st) })
	_, _ = r.syncTable(desired) // the pass logs and counts its errors
}
