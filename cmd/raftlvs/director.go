package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftlvs/raftlvs/cluster"
	"github.com/raftlvs/raftlvs/cluster/api"
	"github.com/raftlvs/raftlvs/cluster/gossip"
	"github.com/raftlvs/raftlvs/director"
	"github.com/raftlvs/raftlvs/director/ipvs"
	"github.com/raftlvs/raftlvs/director/syncd"
	"github.com/raftlvs/raftlvs/director/vip"
	"github.com/raftlvs/raftlvs/fsm"
)

// directorConfig is everything `raftlvs director` takes, from flags or a config file.
type directorConfig struct {
	ID            string   `json:"id"`
	DataDir       string   `json:"data_dir"`
	RaftAddr      string   `json:"raft_addr"`
	RaftAdvertise string   `json:"raft_advertise"`
	APIAddr       string   `json:"api_addr"`
	APIAdvertise  string   `json:"api_advertise"`
	GossipAddr    string   `json:"gossip_addr"`
	GossipKey     string   `json:"gossip_key"`
	Bootstrap     bool     `json:"bootstrap"`
	Join          addrList `json:"join"`
	ClusterID     string   `json:"cluster_id"`
	Witness       bool     `json:"witness"`

	VIPInterface  string   `json:"vip_interface"`
	GARPBurst     int      `json:"garp_burst"`
	GARPInterval  duration `json:"garp_interval"`
	GARPRefresh   duration `json:"garp_refresh"`
	SyncDaemon    bool     `json:"sync_daemon"`
	SyncInterface string   `json:"sync_interface"`
	SyncID        uint8    `json:"sync_id"`
	SyncGroup     string   `json:"sync_group"`
	SyncPort      uint16   `json:"sync_port"`
	SyncTTL       uint8    `json:"sync_ttl"`

	Heartbeat   duration `json:"heartbeat"`
	Election    duration `json:"election"`
	LeaderLease duration `json:"leader_lease"`
	DrainMax    duration `json:"drain_max"`
	ReapDelay   duration `json:"reap_delay"`
	LogLevel    string   `json:"log_level"`
}

func newDirectorCmd() *cobra.Command { return directorCmd(&directorConfig{}, runDirector) }

// directorCmd binds the flags to cfg and hands the merged config to run.
func directorCmd(cfg *directorConfig, run func(context.Context, *directorConfig) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "director",
		Short: "Run a director: Raft member, IPVS programmer, VIP owner while leader",
		Long: `Run a director. The first director of a cluster starts with --bootstrap; the others
with --join ADDR (the API address of any director). Every director programs the same IPVS
table; the Raft leader holds the VIPs on --vip-interface and runs the sync daemon as master.
With --witness the director runs Raft only (no IPVS, no VIPs): a small third voter that
keeps a majority for a site with two load balancers, and the way to run on a kernel
without IPVS. Flags override the --config file (YAML; keys are the flag names with _).`,
		Args: exactArgs(0, "no arguments"),
		RunE: runE(configured(cfg, run)),
	}
	f := cmd.Flags()
	f.String("config", "", "config file (YAML)")
	f.StringVar(&cfg.ID, "id", hostname(), "node id, unique and stable")
	f.StringVar(&cfg.DataDir, "data-dir", "/var/lib/raftlvs", "Raft log, snapshots and IPVS ownership")
	f.StringVar(&cfg.RaftAddr, "raft-addr", "127.0.0.1:7000", "Raft listen address")
	f.StringVar(&cfg.RaftAdvertise, "raft-advertise", "", "Raft address peers dial (default: --raft-addr)")
	f.StringVar(&cfg.APIAddr, "api-addr", "127.0.0.1:7080", "HTTP API listen address")
	f.StringVar(&cfg.APIAdvertise, "api-advertise", "", "API address other directors and agents dial (default: --api-addr)")
	f.StringVar(&cfg.GossipAddr, "gossip-addr", "", "gossip listen address HOST:PORT (default: the Raft host, port 7946)")
	f.StringVar(&cfg.GossipKey, "gossip-key", os.Getenv("RAFTLVS_GOSSIP_KEY"), "gossip encryption key, base64 of 16/24/32 bytes (env RAFTLVS_GOSSIP_KEY)")
	f.BoolVar(&cfg.Bootstrap, "bootstrap", false, "form a new cluster with this director (ignored once it has state)")
	f.Var(&cfg.Join, "join", "API address(es) of existing directors to join through")
	f.StringVar(&cfg.ClusterID, "cluster-id", "", "cluster name, recorded at bootstrap (default: generated)")
	f.BoolVar(&cfg.Witness, "witness", false, "Raft only: no IPVS, no VIPs, never stays leader")
	f.StringVar(&cfg.VIPInterface, "vip-interface", "eth0", "interface that carries the VIPs")
	f.IntVar(&cfg.GARPBurst, "garp-burst", vip.DefaultBurst, "gratuitous ARP / NA announcements when a VIP is claimed")
	durationFlag(f, &cfg.GARPInterval, "garp-interval", vip.DefaultBurstInterval, "spacing of the announcement burst")
	durationFlag(f, &cfg.GARPRefresh, "garp-refresh", vip.DefaultRefresh, "periodic re-announcement while leader (negative: off)")
	f.BoolVar(&cfg.SyncDaemon, "sync-daemon", true, "run the IPVS connection-sync daemon (backup everywhere, master on the leader)")
	f.StringVar(&cfg.SyncInterface, "sync-interface", "", "sync daemon multicast interface (default: --vip-interface)")
	f.Uint8Var(&cfg.SyncID, "sync-id", 1, "sync daemon id (the same on every director)")
	f.StringVar(&cfg.SyncGroup, "sync-group", "", "sync multicast group (default 224.0.0.81)")
	f.Uint16Var(&cfg.SyncPort, "sync-port", 0, "sync multicast port (default 8848)")
	f.Uint8Var(&cfg.SyncTTL, "sync-ttl", 0, "sync multicast TTL (default 1)")
	durationFlag(f, &cfg.Heartbeat, "heartbeat", cluster.DefaultHeartbeatTimeout, "Raft heartbeat timeout")
	durationFlag(f, &cfg.Election, "election", cluster.DefaultElectionTimeout, "Raft election timeout")
	durationFlag(f, &cfg.LeaderLease, "leader-lease", cluster.DefaultLeaderLeaseTimeout, "Raft leader lease (at most --heartbeat)")
	durationFlag(f, &cfg.DrainMax, "drain-max", time.Minute, "longest a leaving agent's real servers stay draining")
	durationFlag(f, &cfg.ReapDelay, "reap-delay", 30*time.Second, "how long a failed agent's real servers stay (at weight 0) before removal")
	f.StringVar(&cfg.LogLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "director"
	}
	return h
}

// gossipBind returns the gossip listen address: as configured, or the Raft host on the
// default gossip port.
func (c *directorConfig) gossipBind() (string, error) {
	if c.GossipAddr != "" {
		return c.GossipAddr, nil
	}
	host, _, err := net.SplitHostPort(c.RaftAddr)
	if err != nil {
		return "", usagef("--raft-addr %q: %v", c.RaftAddr, err)
	}
	return net.JoinHostPort(host, fmt.Sprint(gossip.DefaultPort)), nil
}

func (c *directorConfig) syncConfig() (syncd.Config, error) {
	sc := syncd.Config{Interface: c.SyncInterface, SyncID: c.SyncID, Port: c.SyncPort, TTL: c.SyncTTL}
	if sc.Interface == "" {
		sc.Interface = c.VIPInterface
	}
	if c.SyncGroup != "" {
		g, err := netip.ParseAddr(c.SyncGroup)
		if err != nil {
			return sc, usagef("--sync-group: %v", err)
		}
		sc.Group = g
	}
	if err := sc.Validate(); err != nil {
		return sc, usagef("sync daemon: %v", err)
	}
	return sc, nil
}

func runDirector(ctx context.Context, cfg *directorConfig) error {
	log, err := newLogger(cfg.LogLevel)
	if err != nil {
		return err
	}
	if err := cfg.check(); err != nil {
		return err
	}
	key, err := gossip.DecodeSecretKey(cfg.GossipKey)
	if err != nil {
		return usagef("--gossip-key: %v", err)
	}
	gossipAddr, err := cfg.gossipBind()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	// Take the API port first: a port in use must stop the director before it joins.
	ln, err := net.Listen("tcp", cfg.APIAddr)
	if err != nil {
		return fmt.Errorf("listen on the API address: %w", err)
	}
	defer ln.Close()

	// Then the data plane: a director that cannot program IPVS must say so before it
	// becomes a voter that could lead.
	var dir *director.Director
	if !cfg.Witness {
		if dir, err = newDirectorDataPlane(cfg, log); err != nil {
			return err
		}
		defer dir.Close()
	}

	pool, err := openDirectorPool(cfg, gossipAddr, key, log)
	if err != nil {
		return err
	}
	defer pool.Shutdown()

	var node *cluster.Node
	onLeader := func(ctx context.Context) {
		if dir != nil {
			dir.Lead(ctx) // waits until dir.Run has wired it up
			return
		}
		witnessLead(ctx, node, log)
	}
	node, err = cluster.Open(cluster.Config{
		NodeID:             cfg.ID,
		DataDir:            cfg.DataDir,
		RaftBind:           cfg.RaftAddr,
		RaftAdvertise:      cfg.RaftAdvertise,
		APIAddr:            cfg.apiAdvertise(),
		GossipAddr:         pool.LocalAddr().String(),
		Bootstrap:          cfg.Bootstrap,
		ClusterID:          cfg.ClusterID,
		Witness:            cfg.Witness,
		HeartbeatTimeout:   time.Duration(cfg.Heartbeat),
		ElectionTimeout:    time.Duration(cfg.Election),
		LeaderLeaseTimeout: time.Duration(cfg.LeaderLease),
		Logger:             log,
		OnLeader:           onLeader,
	})
	if err != nil {
		return err
	}
	defer node.Close()
	go func() {
		select {
		case <-node.Done():
			log.Warn("raft stopped (this director was removed from the cluster?): exiting")
			stop()
		case <-ctx.Done():
		}
	}()
	go joinDirectorsGossip(ctx, pool, node, log)
	if dir != nil {
		dir.SetLeaderDuties(newRegistrar(cfg, pool, node, dir, log))
	}

	srv := api.NewServer(node, log)
	if dir != nil {
		srv.DataPlane = dir.DataPlane
	}
	srv.Agents = func() any { return agentsOf(pool) }
	httpSrv := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("API server stopped", "err", err)
			stop()
		}
	}()
	log.Info("director running", "id", cfg.ID, "raft", cfg.RaftAddr, "api", cfg.APIAddr,
		"gossip", pool.LocalAddr(), "witness", cfg.Witness)

	if len(cfg.Join) > 0 {
		go joinCluster(ctx, cfg, node, log)
	}
	if dir != nil {
		err = dir.Run(ctx, node)
	} else {
		<-ctx.Done()
	}

	// Planned stop: hand leadership over first, so clients see a transfer (milliseconds)
	// rather than an election after a timeout; the transfer stops the leader loop, which
	// releases the VIPs.
	if node.IsLeader() {
		tctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if terr := node.TransferLeadership(tctx, ""); terr != nil {
			log.Warn("transfer leadership before stopping", "err", terr)
		}
		cancel()
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	httpSrv.Shutdown(shutdownCtx)
	log.Info("director stopped")
	return err
}

// check refuses configurations that cannot work, before anything starts.
func (c *directorConfig) check() error {
	if err := fsm.ValidateName(c.ID); err != nil {
		return usagef("--id: %v", err)
	}
	if c.Bootstrap && len(c.Join) > 0 {
		return usagef("--bootstrap and --join exclude each other: bootstrap the first director only, join the others")
	}
	host, _, err := net.SplitHostPort(c.apiAdvertise())
	if err != nil {
		return usagef("--api-advertise: %v", err)
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() {
		return usagef("--api-addr %s listens on every address: give --api-advertise, the address other directors and agents dial", c.APIAddr)
	}
	return nil
}

// apiAdvertise is the API address recorded for the other directors and the agents.
func (c *directorConfig) apiAdvertise() string {
	if c.APIAdvertise != "" {
		return c.APIAdvertise
	}
	return c.APIAddr
}

// newDirectorDataPlane opens the kernel and prepares the director over it.
func newDirectorDataPlane(cfg *directorConfig, log *slog.Logger) (*director.Director, error) {
	sc, err := cfg.syncConfig()
	if err != nil {
		return nil, err
	}
	kernel, err := director.NewLinuxKernel(cfg.SyncDaemon)
	if errors.Is(err, ipvs.ErrNoIPVS) {
		return nil, fmt.Errorf("%w (or run with --witness for a Raft-only voter)", err)
	}
	if err != nil {
		return nil, err
	}
	dir, err := director.New(director.Config{
		VIP:         vip.Config{Interface: cfg.VIPInterface, Burst: cfg.GARPBurst, BurstInterval: time.Duration(cfg.GARPInterval), Refresh: time.Duration(cfg.GARPRefresh)},
		SyncEnabled: cfg.SyncDaemon,
		Sync:        sc,
		StateDir:    cfg.DataDir,
		Logger:      log,
	}, kernel)
	if err != nil {
		kernel.Close()
		return nil, err
	}
	return dir, nil
}

// witnessLead hands leadership away from a witness, which cannot hold VIPs. The transfer
// runs beside the leader loop: the cluster stops the loop before transferring, so the
// loop itself must not wait for it. A failed transfer (no other voter yet) makes the
// cluster run the loop again, which retries after the pause.
func witnessLead(ctx context.Context, node *cluster.Node, log *slog.Logger) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(time.Second):
	}
	log.Info("witness is leader: handing leadership over")
	go func() {
		if err := node.TransferLeadership(context.Background(), ""); err != nil && !errors.Is(err, cluster.ErrNotLeader) {
			log.Warn("witness cannot hand leadership over yet", "err", err)
		}
	}()
	<-ctx.Done()
}

// joinCluster asks the directors in --join to add this node as a voter, retrying until
// one accepts or this node is already a member.
func joinCluster(ctx context.Context, cfg *directorConfig, node *cluster.Node, log *slog.Logger) {
	client := api.NewClient(cfg.Join...)
	self := node.Self()
	for wait := 500 * time.Millisecond; ; wait = min(2*wait, 10*time.Second) {
		if st := node.Status(); st.LeaderID != "" && isVoter(st, self.ID) {
			return
		}
		err := client.Join(ctx, self)
		if err == nil {
			log.Info("joined the cluster", "via", cfg.Join.String())
			return
		}
		log.Warn("join the cluster", "via", cfg.Join.String(), "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func isVoter(st cluster.Status, id string) bool {
	for _, v := range st.Voters {
		if v.ID == id {
			return true
		}
	}
	return false
}
