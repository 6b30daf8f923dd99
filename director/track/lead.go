package track

import (
	"context"
	"time"
)

// Leader is what the tracked-check duty needs of the Raft node (*cluster.Node).
type Leader interface {
	// HasTransferTarget: a planned transfer has an eligible director to pick.
	HasTransferTarget(ctx context.Context) (bool, error)
	// TransferLeadership to an eligible director ("": the node picks); it stops the
	// leader loop, VIPs first, before it transfers.
	TransferLeadership(ctx context.Context, id string) error
}

// recheck is how often a failing leader with no one to hand over to looks again;
// handOverWait how long it waits after starting a handover before it tries again (one
// that failed: the target went away, raft timed it out).
const (
	recheck      = time.Second
	handOverWait = 10 * time.Second
)

// Duty is the first leader duty of a director with tracked checks, and in force at once:
// the checks gate the VIPs alone (the VIP duty asks the Tracker, Verdict), so the duties
// after it — the sync daemon, agent registration, health aggregation, the cluster's
// trust — run whatever the checks say. While the checks fail it hands leadership to an
// eligible director, at most every handOverWait; with none it leads on holding no VIP
// (keepalived's FAULT) and looks again every second and at each change.
func (t *Tracker) Duty(node Leader) func(ctx context.Context, started func()) error {
	return func(ctx context.Context, started func()) error {
		started()
		tick := time.NewTicker(recheck)
		defer tick.Stop()
		var tried time.Time
		for {
			passing, known, reason, changed := t.Verdict()
			if !passing && known && time.Since(tried) >= handOverWait && t.handOver(ctx, node, reason) {
				tried = time.Now()
			}
			select {
			case <-ctx.Done():
				return nil
			case <-changed:
			case <-tick.C:
			}
		}
	}
}

// handOver starts handing leadership to an eligible director and reports whether it did.
func (t *Tracker) handOver(ctx context.Context, node Leader, reason string) bool {
	ok, err := node.HasTransferTarget(ctx)
	if err != nil {
		t.log.Warn("tracked checks fail; cannot list directors to hand over to", "reason", reason, "err", err)
	}
	if !ok {
		t.log.Debug("tracked checks fail and no eligible director can take over: holding nothing", "reason", reason)
		return false
	}
	t.log.Warn("tracked checks fail: handing leadership to an eligible director", "reason", reason)
	// Beside the duty: the transfer stops the leader loop, this duty included, first.
	go func() {
		if err := node.TransferLeadership(context.Background(), ""); err != nil {
			t.log.Warn("hand leadership over", "err", err)
		}
	}()
	return true
}
