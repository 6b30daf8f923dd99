// Package daemon assembles a whole director from one Options: its data plane (IPVS
// reconciler, VIPs, sync daemons), its Raft node with the ordered list of leader duties,
// the gossip pool it shares with the agents, and the HTTP API. cmd/raftlvs only turns
// flags and a config file into Options. See DESIGN.md.
package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/cluster"
	"github.com/raftlvs/raftlvs/cluster/apiserver"
	"github.com/raftlvs/raftlvs/cluster/gossip"
	"github.com/raftlvs/raftlvs/daemon/notify"
	"github.com/raftlvs/raftlvs/director"
	"github.com/raftlvs/raftlvs/director/ipvs"
	"github.com/raftlvs/raftlvs/director/registrar"
	"github.com/raftlvs/raftlvs/director/syncd"
	"github.com/raftlvs/raftlvs/director/track"
	"github.com/raftlvs/raftlvs/director/vip"
	"github.com/raftlvs/raftlvs/pki"
)

// ErrBadOptions classifies Options that cannot work; the error is an *OptionError.
var ErrBadOptions = errors.New("bad director options")

// OptionError names the option that is wrong (a field of Options) and why.
type OptionError struct {
	Option string
	Reason string
}

func (e *OptionError) Error() string { return e.Option + ": " + e.Reason }
func (e *OptionError) Unwrap() error { return ErrBadOptions }

func badOption(option, format string, args ...any) error {
	return &OptionError{Option: option, Reason: fmt.Sprintf(format, args...)}
}

// Options is everything a director is made of. Zero values take the defaults of the
// packages that own them.
type Options struct {
	ID      string // unique and stable
	DataDir string // Raft log, snapshots, IPVS ownership

	RaftBind      string // HOST:PORT; port 0 picks one
	RaftAdvertise string // what peers dial; "" is the bound address
	APIBind       string // HOST:PORT of the HTTP API; port 0 picks one
	APIAdvertise  string // what other directors and agents dial; "" is the bound address
	GossipBind    string // HOST:PORT; "" is the Raft host on gossip.DefaultPort
	GossipKey     []byte // the pool's encryption key (16, 24 or 32 bytes)

	Bootstrap bool     // form a new cluster (ignored once DataDir has state)
	Join      []string // API addresses of directors to join through
	ClusterID string   // recorded at bootstrap

	// Witness runs Raft only: no IPVS, no VIPs, and it hands leadership away.
	Witness bool
	// VIPOnly holds VIPs through Raft leadership and programs no IPVS (no reconciler, no
	// sync daemons, no agent registration): keepalived's VRRP alone, for a proxy on
	// this machine. It runs on a kernel without IPVS.
	VIPOnly bool
	// Track, if set, are this director's tracked checks: while they fail it holds no
	// VIPs, hands leadership away and is no planned transfer's target.
	Track *track.Config

	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	// CommitTimeout is how soon followers hear of a commit when no other write follows
	// it (raft's; default cluster.DefaultCommitTimeout): what a read through a follower
	// right after a write waits for.
	CommitTimeout time.Duration

	VIP vip.Config
	// VIPFence says whether the kernel fences the VIPs ("" is vip.FenceAuto: with
	// nftables when the kernel has it).
	VIPFence vip.FenceMode
	// Sync, if set, runs the IPVS connection-sync daemons (backup everywhere, master on
	// the leader).
	Sync *syncd.Config

	// Security: TLS between directors, HTTPS and authentication on the API; the zero
	// value is the secure default (see tls.go).
	Security Security

	DrainMax  time.Duration // longest a leaving agent's real servers stay draining
	ReapDelay time.Duration // how long a failed agent's real servers stay before removal

	// ExecCheckDir is where exec health checks' commands must live; "" refuses them
	// (a command in the replicated state runs on every director).
	ExecCheckDir string
	// HealthDial, if set, opens the health checks' connections (the namespace tests
	// probe from a director's own network namespace).
	HealthDial func(ctx context.Context, d *net.Dialer, network, address string) (net.Conn, error)

	// Notify are the commands this director runs when it becomes leader or follower,
	// loses its leader (fault), and when a real server's committed health changes
	// (daemon/notify.go); NotifyTimeout bounds each (notify.DefaultTimeout).
	Notify        notify.Hooks
	NotifyTimeout time.Duration

	// Kernel, if set, replaces this namespace's kernel (tests give an in-memory IPVS).
	Kernel *director.Kernel
	Logger *slog.Logger
}

// Director is one running director.
type Director struct {
	opts   Options
	log    *slog.Logger
	api    net.Listener
	plane  *director.Director // nil on a witness
	track  *track.Tracker     // nil without tracked checks
	health *health            // nil on a witness or a VIP-only director
	notify *notifier          // nil without hooks
	pool   *gossip.Pool
	node   *cluster.Node
	tls    *pki.Reloader // nil when insecure
	server *http.Server
	// stopServing ends the context of every API request (Run, when it stops).
	stopServing context.CancelFunc
	obs         *observability
	close       []func()
}

// New opens everything in the order that keeps a misconfigured director out of the
// cluster: the API port first (a port in use stops it before it joins), then the data
// plane (a director that cannot program IPVS says so before it becomes a voter that
// could lead), the gossip pool, and last the Raft node with its leader duties.
func New(opts Options) (_ *Director, err error) {
	opts.Logger = cmp.Or(opts.Logger, slog.Default())
	if err := opts.check(); err != nil {
		return nil, err
	}
	d := &Director{opts: opts, log: opts.Logger, obs: newObservability(opts.ID)}
	if opts.Witness && opts.Bootstrap {
		// Allowed, so that a witness can be set up first; but until a full director
		// joins, nothing holds the VIPs (the witness leads, and says so each term).
		d.log.Warn("a witness bootstraps the cluster: no director holds the VIPs until one without --witness joins")
	}
	defer func() {
		if err != nil {
			d.shutdown()
		}
	}()
	if d.api, err = net.Listen("tcp", opts.APIBind); err != nil {
		return nil, fmt.Errorf("listen on the API address: %w", err)
	}
	d.close = append(d.close, func() { d.api.Close() })
	// The VIP owner fences its announcements with the Raft lease (director/vip).
	opts.VIP.Lease = cmp.Or(opts.LeaderLeaseTimeout, cluster.DefaultLeaderLeaseTimeout)
	if d.tls, err = d.openTLS(); err != nil {
		return nil, err
	}
	// The tracked checks gate the VIPs (the data plane asks them); their verdict is
	// announced in the gossip pool, which is open by the time they run.
	if opts.Track != nil {
		cfg := *opts.Track
		cfg.Logger, cfg.OnChange = opts.Logger, d.announceEligibility
		if d.track, err = track.New(cfg); err != nil {
			return nil, badOption("Track", "%v", err)
		}
	}
	if !opts.Witness {
		if d.plane, err = newDataPlane(opts, d.obs, d.track); err != nil {
			return nil, err
		}
		d.close = append(d.close, d.plane.Close)
	}
	if d.pool, err = d.openPool(); err != nil {
		return nil, err
	}
	d.close = append(d.close, func() { d.pool.Shutdown() })
	d.node, err = cluster.Open(cluster.Config{
		NodeID:             opts.ID,
		DataDir:            opts.DataDir,
		RaftBind:           opts.RaftBind,
		RaftAdvertise:      opts.RaftAdvertise,
		APIAddr:            d.APIAddr(),
		GossipAddr:         d.pool.LocalAddr().String(),
		Bootstrap:          opts.Bootstrap,
		ClusterID:          d.opts.ClusterID,
		TLS:                d.tlsSource(),
		Witness:            opts.Witness,
		Eligible:           d.eligible,
		HeartbeatTimeout:   opts.HeartbeatTimeout,
		ElectionTimeout:    opts.ElectionTimeout,
		LeaderLeaseTimeout: opts.LeaderLeaseTimeout,
		OnEvent:            d.obs.clusterEvent,
		CommitTimeout:      opts.CommitTimeout,
		Logger:             opts.Logger,
	})
	if err != nil {
		return nil, err
	}
	d.close = append(d.close, func() { d.node.Stop() })
	if d.plane != nil && !opts.VIPOnly {
		if d.health, err = newHealth(opts, d.node, d.apiClient, agentVerdicts(d.pool, d.node)); err != nil {
			return nil, err
		}
	}
	if d.notify = newNotifier(opts, d.node); d.notify != nil && len(opts.Notify.For(notify.Health)) > 0 {
		d.obs.state.OnHealth(d.notify.healthChanged)
	}
	d.node.Lead(d.duties()...)
	// Requests live in serving's context: stopping ends the long polls and the reads
	// that wait to catch up, rather than waiting them out.
	serving, stopServing := context.WithCancel(context.Background())
	d.stopServing = stopServing
	d.server = &http.Server{Handler: d.mount(d.apiServer()), ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return serving }}
	return d, nil
}

// duties is the one list of what this director does while it leads, in order: its
// tracked checks, which keep the rest from starting while they fail; the VIPs, first in
// and first out; then the master sync daemon, agent registration and the health checks'
// aggregation, which a VIP-only director has no use for; the sweep of abandoned staged
// restores; the cluster's trust records; and last the notify hooks' leader event, once
// the VIPs are held. A witness hands leadership away instead of the data plane's duties.
func (d *Director) duties() []cluster.Duty {
	var duties []cluster.Duty
	switch {
	case d.plane == nil:
		duties = append(duties, d.node.WitnessDuty())
	default:
		if d.track != nil {
			duties = append(duties, cluster.Duty{Name: "tracked checks", Run: d.track.Duty(d.node)})
		}
		duties = append(duties, cluster.Duty{Name: "VIPs", Run: d.plane.HoldVIPs})
		if !d.opts.VIPOnly {
			duties = append(duties,
				cluster.Duty{Name: "master sync daemon", Run: d.plane.RunSyncMaster},
				cluster.Duty{Name: "agent registrar", Run: registrar.Lead(registrar.Config{
					Members:   d.pool,
					State:     d.node,
					Writer:    d.node,
					Conns:     d.plane,
					Counters:  d.obs.registrar,
					MaxDrain:  d.opts.DrainMax,
					ReapDelay: d.opts.ReapDelay,
					Admit:     d.agentAdmission(),
					Logger:    d.log,
				}, d.node)},
				d.health.duty())
		}
		duties = append(duties, cluster.Duty{Name: "staged restore sweep", Run: abortAbandoned(d.node, time.Now, stagedSweep, d.log)})
	}
	duties = append(duties, d.trustDuty())
	if d.notify != nil {
		duties = append(duties, d.notify.duty())
	}
	return duties
}

// Run serves until ctx ends or the node is removed from the cluster, then stops as
// planned: a leader hands leadership over first, so that clients see a transfer rather
// than an election. It closes everything New opened.
func (d *Director) Run(ctx context.Context) error {
	defer d.shutdown()
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		select {
		case <-d.node.Done():
			d.log.Warn("raft stopped (this director was removed from the cluster?): exiting")
			stop()
		case <-ctx.Done():
		}
	}()
	go func() {
		if err := d.server.Serve(d.api); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("API server stopped", "err", err)
			stop()
		}
	}()
	go keepDirectorsInGossip(ctx, d.pool, d.node, d.log)
	if d.track != nil {
		go d.track.Run(ctx)
	}
	if d.health != nil {
		go d.health.run(ctx)
	}
	if d.notify != nil {
		go d.notify.run(ctx)
	}
	d.watchTLS(ctx)
	go d.obs.watchState(ctx, d.node)
	if len(d.opts.Join) > 0 {
		go func() {
			if err := d.node.JoinThrough(ctx, d.apiClient(d.opts.Join...)); err != nil && ctx.Err() == nil {
				d.log.Error("join the cluster", "err", err)
			}
		}()
	}
	d.log.Info("director running", "id", d.opts.ID, "raft", d.node.Self().RaftAddr, "api", d.APIAddr(),
		"gossip", d.pool.LocalAddr(), "witness", d.opts.Witness, "vip_only", d.opts.VIPOnly, "tracked_checks", d.track != nil)
	var err error
	if d.plane != nil {
		err = d.plane.Run(ctx, d.node)
	} else {
		<-ctx.Done()
	}
	if serr := d.node.Stop(); serr != nil {
		d.log.Warn("close the raft node", "err", serr)
	}
	d.stopServing()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := d.server.Shutdown(shutdownCtx); serr != nil {
		d.log.Warn("API requests still running after 5 s: closing their connections", "err", serr)
		d.server.Close()
	}
	d.log.Info("director stopped")
	return err
}

// Node is this director's Raft node.
func (d *Director) Node() *cluster.Node { return d.node }

// APIAddr is the API address other directors and agents dial.
func (d *Director) APIAddr() string {
	return cmp.Or(d.opts.APIAdvertise, d.api.Addr().String())
}

// GossipAddr is where this director's gossip listens.
func (d *Director) GossipAddr() netip.AddrPort { return d.pool.LocalAddr() }

func (d *Director) shutdown() {
	for i := len(d.close) - 1; i >= 0; i-- {
		d.close[i]()
	}
	d.close = nil
}

// apiServer is the API with the hooks that report this director's data plane and agents.
func (d *Director) apiServer() *apiserver.Server {
	srv := apiserver.New(d.node, d.log)
	if d.plane != nil {
		srv.DataPlane = func(counters bool) *api.DataPlane { return dataPlaneStatus(d.plane.Status(counters)) }
		srv.Connections = d.connections
	}
	srv.Agents = func() []api.Agent { return agentsOf(d.pool) }
	if d.health != nil {
		srv.Health = d.health.hooks()
	}
	d.secureAPI(srv)
	return srv
}

// openPool joins this director to the gossip pool it shares with the agents. The other
// directors' gossip addresses come from the replicated state (keepDirectorsInGossip), so
// a director needs no gossip join list of its own. The pool is told apart from other
// clusters' by its key, not by a label: a label that one director forgot would cut it
// off from every agent.
func (d *Director) openPool() (*gossip.Pool, error) {
	bind := d.opts.GossipBind
	if bind == "" {
		host, _, err := net.SplitHostPort(d.opts.RaftBind)
		if err != nil {
			return nil, badOption("RaftBind", "%q: %v", d.opts.RaftBind, err)
		}
		bind = net.JoinHostPort(host, strconv.Itoa(gossip.DefaultPort))
	}
	host, port, err := splitHostPort(bind)
	if err != nil {
		return nil, badOption("GossipBind", "%v", err)
	}
	// A director with tracked checks starts ineligible: no transfer should pick it before
	// its checks have run once.
	pool, err := gossip.New(gossip.Config{
		NodeName: d.opts.ID, BindAddr: host, BindPort: port, SecretKey: d.opts.GossipKey, Logger: d.log,
	}, d.gossipMeta(d.opts.Track == nil))
	if err != nil {
		return nil, fmt.Errorf("join the gossip pool: %w", err)
	}
	return pool, nil
}

// newDataPlane opens the kernel (unless Options gave one) and prepares the director over
// it, its VIP and drift events going to the timeline, its VIPs gated by the tracked
// checks if any.
func newDataPlane(opts Options, obs *observability, gate *track.Tracker) (*director.Director, error) {
	kernel := opts.Kernel
	if kernel == nil && opts.VIPOnly {
		var err error
		if kernel, err = director.NewLinuxVIPKernel(opts.VIPFence, opts.Logger); err != nil {
			return nil, err
		}
	}
	if kernel == nil {
		var err error
		kernel, err = director.NewLinuxKernel(opts.Sync != nil, opts.VIPFence, opts.Logger)
		if errors.Is(err, ipvs.ErrNoIPVS) {
			return nil, fmt.Errorf("%w (or run VIP-only, which holds VIPs and programs no IPVS, or as a witness, a Raft-only voter)", err)
		}
		if err != nil {
			return nil, err
		}
	}
	cfg := director.Config{VIP: opts.VIP, StateDir: opts.DataDir, OnRepair: obs.repairEvent, Logger: opts.Logger}
	cfg.VIP.OnEvent = obs.vipEvent
	if gate != nil {
		cfg.Gate = gate
	}
	if opts.Sync != nil {
		cfg.SyncEnabled, cfg.Sync = true, *opts.Sync
	}
	dir, err := director.New(cfg, kernel)
	if err != nil {
		kernel.Close()
		return nil, err
	}
	return dir, nil
}

// check refuses options that cannot work, before anything starts.
func (o Options) check() error {
	if o.VIPOnly && o.Witness {
		return badOption("VIPOnly", "a witness holds no VIPs: choose one")
	}
	if o.VIPOnly && o.Sync != nil {
		return badOption("Sync", "a VIP-only director runs no IPVS, so no sync daemon")
	}
	if o.VIPOnly && o.Kernel != nil && o.Kernel.IPVS != nil {
		return badOption("Kernel", "a VIP-only director is given no IPVS")
	}
	if o.Witness && o.Track != nil {
		return badOption("Track", "a witness never holds the VIPs: it has nothing to track")
	}
	if o.Bootstrap && len(o.Join) > 0 {
		return badOption("Bootstrap", "a director that bootstraps joins no one: bootstrap the first director only, join the others")
	}
	if o.APIAdvertise == "" {
		host, _, err := net.SplitHostPort(o.APIBind)
		if err != nil {
			return badOption("APIBind", "%q: %v", o.APIBind, err)
		}
		if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() {
			return badOption("APIAdvertise", "required when the API listens on every address (%s): the address other directors and agents dial", o.APIBind)
		}
	} else if _, _, err := net.SplitHostPort(o.APIAdvertise); err != nil {
		return badOption("APIAdvertise", "%q: %v", o.APIAdvertise, err)
	}
	return nil
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port in %q", addr)
	}
	return host, port, nil
}
