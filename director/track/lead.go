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
	// RestartLeaderLoop stops the duties, VIPs first, and starts them again.
	RestartLeaderLoop(ctx context.Context) error
}

// recheck is how often a failing leader with no one to hand over to looks again;
// handOverWait how long it waits for a handover it started to stop it before it tries
// again (one that failed before it stopped the leader loop).
const (
	recheck      = time.Second
	handOverWait = 10 * time.Second
)

// Duty is the first leader duty of a director with tracked checks. Until their first run
// has finished, and while they fail, it is not in force, so the duties after it (the
// VIPs first) do not start: it hands leadership to an eligible director, or, with none,
// leads holding nothing and looks again every second and at each change. Once the checks
// pass it is in force; when they fail during the term it hands over (or, with no one to
// hand over to, restarts the leader loop so that the VIPs go at once). A handover stops
// this duty; one that failed without doing so is tried again.
func (t *Tracker) Duty(node Leader) func(ctx context.Context, started func()) error {
	return func(ctx context.Context, started func()) error {
		tick := time.NewTicker(recheck)
		defer tick.Stop()
		inForce := false
		for {
			passing, known, reason, changed := t.Verdict()
			switch {
			case passing && !inForce:
				started()
				inForce = true
			case !passing && known && t.handOver(ctx, node, reason, inForce):
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(handOverWait):
					continue
				}
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

// handOver starts handing leadership away and reports whether it did. With no eligible
// director to take over, a duty that is in force (holding) restarts the leader loop, so
// that its own start keeps the VIPs from being claimed; one that is not yet in force
// just waits.
func (t *Tracker) handOver(ctx context.Context, node Leader, reason string, holding bool) bool {
	ok, err := node.HasTransferTarget(ctx)
	if err != nil {
		t.log.Warn("tracked checks fail; cannot list directors to hand over to", "reason", reason, "err", err)
	}
	// Both run beside the duty: each stops the leader loop, this duty included, before
	// it returns.
	switch {
	case ok:
		t.log.Warn("tracked checks fail: handing leadership to an eligible director", "reason", reason)
		go func() {
			if err := node.TransferLeadership(context.Background(), ""); err != nil {
				t.log.Warn("hand leadership over", "err", err)
			}
		}()
		return true
	case holding:
		t.log.Warn("tracked checks fail and no eligible director can take over: releasing the VIPs, leading without them", "reason", reason)
		go func() {
			if err := node.RestartLeaderLoop(context.Background()); err != nil {
				t.log.Warn("restart the leader loop", "err", err)
			}
		}()
		return true
	}
	t.log.Debug("tracked checks fail and no eligible director can take over: holding nothing", "reason", reason)
	return false
}
