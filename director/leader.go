package director

import (
	"context"
	"errors"
	"sync"

	"github.com/raftlvs/raftlvs/director/syncd"
)

// Lead runs the leader duties for as long as ctx lives; the cluster calls it (as its
// OnLeader) after a Barrier on gaining leadership, cancels ctx on losing it, and waits for
// Lead to return before anything else happens. Order matters both ways: the VIPs come
// first (clients reach the new leader as soon as possible), the sync master next, then
// the other duties; on the way out the VIPs go first, so that two directors never answer
// for a VIP, then the rest is stopped and waited for.
func (d *Director) Lead(ctx context.Context) {
	// Raft may elect this node before the daemon has finished wiring it up.
	select {
	case <-d.running:
	case <-ctx.Done():
		return
	}
	d.mu.Lock()
	c, duties := d.cluster, d.leader
	d.mu.Unlock()
	log := d.log.With("role", "leader")
	changes, cancel := c.Watch()
	defer cancel()

	vips := ClusterVIPs(c)
	if err := d.vips.Claim(ctx, vips); err != nil {
		// What succeeded is held; the owner retries the rest with back-off.
		log.Error("claim VIPs", "err", err)
	}

	if d.cfg.SyncEnabled {
		if err := d.kernel.Sync.Start(syncd.Master, d.cfg.Sync); err != nil {
			log.Error("start master sync daemon", "err", err)
		} else {
			log.Info("master sync daemon running", "interface", d.cfg.Sync.Interface, "sync_id", d.cfg.Sync.SyncID)
		}
	}

	var wg sync.WaitGroup
	if duties != nil {
		wg.Go(func() {
			if err := duties.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				log.Error("leader duty stopped", "err", err)
			}
		})
	}

	for {
		select {
		case <-ctx.Done():
			if err := d.vips.Release(); err != nil {
				log.Error("release VIPs", "err", err)
			} else {
				log.Info("released VIPs")
			}
			if d.cfg.SyncEnabled {
				if err := d.kernel.Sync.Stop(syncd.Master); err != nil {
					log.Warn("stop master sync daemon", "err", err)
				}
			}
			wg.Wait()
			return
		case <-changes:
			if err := d.vips.SetVIPs(ClusterVIPs(c)); err != nil {
				log.Error("update VIPs", "err", err)
			}
		}
	}
}
