// Package director is what a raftlvs director does with its kernel: every director keeps
// its IPVS table equal to the replicated state and runs the sync daemon as backup; the
// Raft leader additionally holds the VIPs and runs the sync daemon as master (its duties,
// leader.go). The pieces live in subpackages: ipvs (reconciler), vip (VIP ownership),
// syncd (sync daemon), registrar (agents → real servers). The daemon package assembles a
// whole director around it.
package director

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/raftlvs/raftlvs/director/ipvs"
	"github.com/raftlvs/raftlvs/director/syncd"
	"github.com/raftlvs/raftlvs/director/vip"
	"github.com/raftlvs/raftlvs/fsm"
)

// Cluster is what a director needs of its Raft node.
type Cluster interface {
	View(fn func(*fsm.State))
	Watch() (<-chan struct{}, func())
	IsLeader() bool
	// Ready is closed once the node has caught up with the cluster. Until then its state
	// may be an old snapshot, or empty: programming the kernel from it would delete every
	// service the restarted director still serves.
	Ready() <-chan struct{}
}

// Config is a director's data-plane settings.
type Config struct {
	// VIP ownership: the interface that carries the VIPs and the announcement schedule.
	VIP vip.Config
	// Sync configures the connection-sync daemons; SyncEnabled turns them on.
	SyncEnabled bool
	Sync        syncd.Config
	// StateDir keeps what must survive a restart (the IPVS services this director owns).
	StateDir string
	// RepairInterval is how often the IPVS table is checked for drift (default 1 s).
	RepairInterval time.Duration
	// OnRepair, if set, is told of each drift repaired (ipvs.ReconcilerConfig.OnRepair).
	OnRepair func(ipvs.Repair)
	// Gate, if set, says when the leader may hold the VIPs (its tracked checks pass).
	Gate   VIPGate
	Logger *slog.Logger
}

// VIPGate is what the VIP duty asks before it holds the VIPs (*track.Tracker): whether
// it may now, why not, and a channel closed when that may have changed.
type VIPGate interface {
	Verdict() (passing, known bool, reason string, changed <-chan struct{})
}

// Kernel is the director's access to its kernel; NewLinuxKernel opens the real one. A
// VIP-only director (NewLinuxVIPKernel) has no IPVS: it holds VIPs and programs nothing.
type Kernel struct {
	IPVS      ipvs.Kernel      // nil: VIP-only
	Stats     ipvs.StatsReader // optional
	Links     vip.Links
	Announcer vip.Announcer
	Fence     vip.Fence   // nil: the VIPs are not fenced (--vip-fence=off, no nf_tables)
	Sync      SyncDaemons // nil when sync is off
	close     func()
	// Conns, optional, reads the IPVS connection table (status --connections).
	Conns ConnectionTable
}

// SyncDaemons starts and stops the kernel's connection-sync daemons.
type SyncDaemons interface {
	Start(state syncd.State, cfg syncd.Config) error
	Stop(state syncd.State) error
	List() ([]syncd.Daemon, error)
}

// Close releases the kernel handles.
func (k *Kernel) Close() {
	if k.close != nil {
		k.close()
	}
}

// Director runs one director's data plane.
type Director struct {
	cfg        Config
	log        *slog.Logger
	kernel     *Kernel
	reconciler *ipvs.Reconciler // nil on a VIP-only director
	vips       *vipOwners

	mu      sync.Mutex
	cluster Cluster
	running chan struct{} // closed by Run once the director is wired to its cluster
}

// New prepares a director over kernel. Nothing is changed until Run.
func New(cfg Config, kernel *Kernel) (*Director, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SyncEnabled && kernel.Sync == nil {
		return nil, errors.New("new director: sync enabled but no sync daemon control")
	}
	if cfg.SyncEnabled {
		if err := cfg.Sync.Validate(); err != nil {
			return nil, fmt.Errorf("new director: %w", err)
		}
	}
	d := &Director{cfg: cfg, log: cfg.Logger, kernel: kernel, running: make(chan struct{})}
	if kernel.IPVS != nil {
		rec, err := ipvs.NewReconciler(ipvs.ReconcilerConfig{
			Kernel:         kernel.IPVS,
			StateDir:       cfg.StateDir,
			Logger:         cfg.Logger,
			RepairInterval: cfg.RepairInterval,
			OnRepair:       cfg.OnRepair,
		})
		if err != nil {
			return nil, fmt.Errorf("new director: %w", err)
		}
		d.reconciler = rec
	}
	vcfg := cfg.VIP
	vcfg.Logger = cfg.Logger
	if vcfg.Verify == nil {
		vcfg.Verify = d.verifyLeader
	}
	if vcfg.Fence == nil {
		vcfg.Fence = kernel.Fence
	}
	owners, err := newVIPOwners(vcfg, kernel.Links, kernel.Announcer)
	if err != nil {
		return nil, fmt.Errorf("new director: %w", err)
	}
	d.vips = owners
	return d, nil
}

// LeaderVerifier is what a Cluster may offer to fence VIP announcements: raft's
// VerifyLeader (*cluster.Node has it). Without it, announcements are not fenced.
type LeaderVerifier interface {
	VerifyLeader(ctx context.Context) error
}

// verifyLeader confirms, through the cluster, that this node still leads.
func (d *Director) verifyLeader(ctx context.Context) error {
	d.mu.Lock()
	c := d.cluster
	d.mu.Unlock()
	if c == nil {
		return errNotWired
	}
	if v, ok := c.(LeaderVerifier); ok {
		return v.VerifyLeader(ctx)
	}
	return nil
}

// VIPOnly reports whether this director programs no IPVS.
func (d *Director) VIPOnly() bool { return d.reconciler == nil }

// Run keeps the kernel in line with the cluster until ctx ends: the backup sync daemon at
// once; then, once the node has caught up with the cluster (until then the kernel keeps
// the table it has), the IPVS table on every state change and every repair interval, and
// — while this node is not the leader — no VIP of the cluster on the VIP interface (one
// left behind by a crashed leader, say). The leader's duties (HoldVIPs, RunSyncMaster)
// are run by the cluster. Run is called once.
func (d *Director) Run(ctx context.Context, c Cluster) error {
	if d.cfg.SyncEnabled {
		// A master left running by this node before a crash would keep multicasting
		// stale state beside the real leader's; the leader loop starts its own.
		if err := d.kernel.Sync.Stop(syncd.Master); err != nil {
			return fmt.Errorf("stop a leftover master sync daemon: %w", err)
		}
		if err := d.kernel.Sync.Start(syncd.Backup, d.cfg.Sync); err != nil {
			return fmt.Errorf("start backup sync daemon: %w", err)
		}
		d.log.Info("backup sync daemon running", "interface", d.cfg.Sync.Interface, "sync_id", d.cfg.Sync.SyncID)
	}
	d.mu.Lock()
	d.cluster = c
	d.mu.Unlock()
	close(d.running) // from here on, the leader duties may run
	select {
	case <-c.Ready():
		d.log.Info("caught up with the cluster", "ipvs", d.reconciler != nil)
	case <-ctx.Done():
		return d.stopBackup()
	}
	var wg sync.WaitGroup
	if d.reconciler != nil {
		wg.Go(func() {
			if err := d.reconciler.Run(ctx, c); err != nil && !errors.Is(err, context.Canceled) {
				d.log.Error("IPVS reconciler stopped", "err", err)
			}
		})
	}
	wg.Go(func() { d.removeStaleVIPs(ctx, c) })
	wg.Wait()
	return d.stopBackup()
}

func (d *Director) stopBackup() error {
	if d.cfg.SyncEnabled {
		if err := d.kernel.Sync.Stop(syncd.Backup); err != nil {
			d.log.Warn("stop backup sync daemon", "err", err)
		}
	}
	return nil
}

// staleVIPCheck is how often a follower looks for VIPs it should not hold, besides on
// every state change (a release that failed, an address added by hand).
const staleVIPCheck = 10 * time.Second

// removeStaleVIPs takes the cluster's VIPs off this node whenever it is not the leader,
// on every state change and periodically: after a crash and restart the state (and so
// the VIP list) is only known once Raft has replayed it.
func (d *Director) removeStaleVIPs(ctx context.Context, c Cluster) {
	changes, cancel := c.Watch()
	defer cancel()
	tick := time.NewTicker(staleVIPCheck)
	defer tick.Stop()
	for {
		if !c.IsLeader() {
			// The owner logs what it removes; ErrClaimed means this node became leader.
			if _, err := d.vips.removeStale(ClusterVIPs(c)); err != nil && !errors.Is(err, vip.ErrClaimed) {
				d.log.Warn("remove stale VIPs", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-changes:
		case <-tick.C:
		}
	}
}

// ClusterVIPs returns every VIP the leader holds: the declared ones and the services'
// (fsm.State.HeldVIPs).
func ClusterVIPs(c Cluster) []fsm.VIP {
	var vips []fsm.VIP
	c.View(func(st *fsm.State) { vips = st.HeldVIPs() })
	return vips
}

// Close releases the kernel handles; call it after Run has returned.
func (d *Director) Close() { d.kernel.Close() }
