package director

import (
	"context"
	"errors"

	"github.com/raftlvs/raftlvs/director/syncd"
)

// The leader's duties over its kernel, in the order the leader loop runs them: the VIPs
// first (clients reach the new leader as soon as possible, and on the way out no two
// directors ever answer for a VIP), then the master sync daemon. The cluster runs them
// after its Barrier and stops each, in the same order, before the next leader's start.

// errNotWired: Raft elected this node before the daemon handed the director its cluster.
var errNotWired = errors.New("director not wired to its cluster yet")

// HoldVIPs is the VIP duty: it claims every VIP of the cluster, declared or a service's,
// each on its interface (a GARP/NA burst each, then a periodic refresh fenced by
// leadership), follows the state as VIPs come and go, and releases them all before it
// returns.
func (d *Director) HoldVIPs(ctx context.Context, started func()) error {
	c, err := d.wired(ctx)
	if err != nil {
		return err
	}
	log := d.log.With("role", "leader")
	changes, cancel := c.Watch()
	defer cancel()
	holding := false
	// hold claims or follows the VIPs while the gate allows, and releases them when it
	// stops allowing; it returns the gate's next change.
	hold := func() <-chan struct{} {
		may, reason, gateChanged := d.mayHoldVIPs()
		switch {
		case may:
			if err := d.vips.hold(ctx, ClusterVIPs(c)); err != nil {
				// What succeeded is held; the owner retries the rest with back-off.
				log.Error("claim VIPs", "err", err)
			}
		case holding:
			log.Warn("releasing the VIPs: the tracked checks fail", "reason", reason)
			fallthrough
		default:
			if err := d.vips.release(); err != nil {
				log.Error("release VIPs", "err", err)
			}
		}
		holding = may
		return gateChanged
	}
	gate := hold()
	started()
	for {
		select {
		case <-ctx.Done():
			if err := d.vips.release(); err != nil {
				log.Error("release VIPs", "err", err)
				return err
			}
			log.Info("released VIPs")
			return nil
		case <-changes:
		case <-gate:
		}
		// A change may come with the end of the term: the end goes first.
		if ctx.Err() == nil {
			gate = hold()
		}
	}
}

// mayHoldVIPs asks the gate, if any, whether this leader may hold the VIPs now.
func (d *Director) mayHoldVIPs() (may bool, reason string, changed <-chan struct{}) {
	if d.cfg.Gate == nil {
		return true, "", nil
	}
	passing, known, reason, changed := d.cfg.Gate.Verdict()
	if !known {
		reason = "not run yet"
	}
	return passing, reason, changed
}

// RunSyncMaster is the sync-daemon duty: the leader multicasts its connection table so
// that a new leader's IPVS has the established connections. Without sync daemons it
// only marks itself started.
func (d *Director) RunSyncMaster(ctx context.Context, started func()) error {
	if !d.cfg.SyncEnabled {
		started()
		<-ctx.Done()
		return nil
	}
	log := d.log.With("role", "leader")
	if err := d.kernel.Sync.Start(syncd.Master, d.cfg.Sync); err != nil {
		// The table still programs and the VIPs still move; connections just do not
		// survive the next failover. The next term tries again.
		log.Error("start master sync daemon", "err", err)
	} else {
		log.Info("master sync daemon running", "interface", d.cfg.Sync.Interface, "sync_id", d.cfg.Sync.SyncID)
	}
	started()
	<-ctx.Done()
	if err := d.kernel.Sync.Stop(syncd.Master); err != nil {
		log.Warn("stop master sync daemon", "err", err)
	}
	return nil
}

// wired waits until Run has handed the director its cluster.
func (d *Director) wired(ctx context.Context) (Cluster, error) {
	select {
	case <-d.running:
	case <-ctx.Done():
		return nil, errNotWired
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cluster, nil
}
