package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftlvs/raftlvs/cluster"
	"github.com/raftlvs/raftlvs/cluster/gossip"
	"github.com/raftlvs/raftlvs/daemon"
	"github.com/raftlvs/raftlvs/director/registrar"
	"github.com/raftlvs/raftlvs/director/syncd"
	"github.com/raftlvs/raftlvs/director/track"
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
	VIPOnly       bool     `json:"vip_only"`

	Track         []string `json:"track"`
	TrackInterval duration `json:"track_interval"`
	TrackTimeout  duration `json:"track_timeout"`
	TrackRise     int      `json:"track_rise"`
	TrackFall     int      `json:"track_fall"`
	Insecure      bool     `json:"insecure"`
	Token         string   `json:"token"`
	TLSCert       string   `json:"tls_cert"`
	TLSKey        string   `json:"tls_key"`
	TLSCA         string   `json:"tls_ca"`
	CACert        string   `json:"ca_cert"`
	CAKey         string   `json:"ca_key"`

	VIPInterface  string   `json:"vip_interface"`
	GARPBurst     int      `json:"garp_burst"`
	GARPInterval  duration `json:"garp_interval"`
	GARPRefresh   duration `json:"garp_refresh"`
	VIPFence      string   `json:"vip_fence"`
	SyncDaemon    bool     `json:"sync_daemon"`
	SyncInterface string   `json:"sync_interface"`
	SyncID        uint8    `json:"sync_id"`
	SyncGroup     string   `json:"sync_group"`
	SyncPort      uint16   `json:"sync_port"`
	SyncTTL       uint8    `json:"sync_ttl"`

	RaftTiming   string   `json:"raft_timing"`
	Heartbeat    duration `json:"heartbeat"`
	Election     duration `json:"election"`
	LeaderLease  duration `json:"leader_lease"`
	DrainMax     duration `json:"drain_max"`
	ReapDelay    duration `json:"reap_delay"`
	ExecCheckDir string   `json:"exec_check_dir"`
	LogLevel     string   `json:"log_level"`

	notifyConfig
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
keeps a majority for a site with two load balancers. With --vip-only it holds the VIPs
while it leads and programs no IPVS (keepalived's VRRP alone, for HAProxy, nginx or a
Kubernetes API behind one address); it runs on a kernel without IPVS. --track runs local
checks (keepalived's track_script): while one fails the director holds no VIPs, hands
leadership to a director whose checks pass, and no planned transfer picks it.
--raft-timing picks how fast a crash is detected (default, fast, relaxed); --heartbeat,
--election and --leader-lease override its parts. Flags override the --config file
(YAML; keys are the flag names with _).`,
		Args:        exactArgs(0, "no arguments"),
		RunE:        runE(configured(cfg, run)),
		Annotations: map[string]string{"credentials": "none"},
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
	f.BoolVar(&cfg.VIPOnly, "vip-only", false, "hold the VIPs while leader and program no IPVS (no sync daemon, no agents)")
	f.StringArrayVar(&cfg.Track, "track", nil, `tracked check, repeatable: exec:"pidof haproxy", http://127.0.0.1:8404/healthz, tcp:127.0.0.1:6443`)
	durationFlag(f, &cfg.TrackInterval, "track-interval", track.DefaultInterval, "tracked checks: time between runs")
	durationFlag(f, &cfg.TrackTimeout, "track-timeout", track.DefaultTimeout, "tracked checks: bound on one run")
	f.IntVar(&cfg.TrackRise, "track-rise", track.DefaultRise, "tracked checks: passing runs in a row to be eligible again")
	f.IntVar(&cfg.TrackFall, "track-fall", track.DefaultFall, "tracked checks: failing runs in a row to give the VIPs up")
	directorTLSFlags(cmd, cfg)
	f.StringVar(&cfg.VIPInterface, "vip-interface", "eth0", "interface that carries the VIPs")
	f.IntVar(&cfg.GARPBurst, "garp-burst", vip.DefaultBurst, "gratuitous ARP / NA announcements when a VIP is claimed")
	durationFlag(f, &cfg.GARPInterval, "garp-interval", vip.DefaultBurstInterval, "spacing of the announcement burst")
	durationFlag(f, &cfg.GARPRefresh, "garp-refresh", vip.DefaultRefresh, "periodic re-announcement while leader (negative: off)")
	f.StringVar(&cfg.VIPFence, "vip-fence", string(vip.FenceAuto), "kernel fence on the VIPs (nftables): the kernel answers ARP/NDP for them only within the leader lease, so a frozen leader goes quiet; auto (if the kernel has nf_tables) or off")
	f.BoolVar(&cfg.SyncDaemon, "sync-daemon", true, "run the IPVS connection-sync daemon (backup everywhere, master on the leader)")
	f.StringVar(&cfg.SyncInterface, "sync-interface", "", "sync daemon multicast interface (default: --vip-interface)")
	f.Uint8Var(&cfg.SyncID, "sync-id", 1, "sync daemon id (the same on every director)")
	f.StringVar(&cfg.SyncGroup, "sync-group", "", "sync multicast group (default 224.0.0.81)")
	f.Uint16Var(&cfg.SyncPort, "sync-port", 0, "sync multicast port (default 8848)")
	f.Uint8Var(&cfg.SyncTTL, "sync-ttl", 0, "sync multicast TTL (default 1)")
	f.StringVar(&cfg.RaftTiming, "raft-timing", "default", "Raft timing profile: "+profileUsage())
	durationFlag(f, &cfg.Heartbeat, "heartbeat", 0, "Raft heartbeat timeout (default: --raft-timing's)")
	durationFlag(f, &cfg.Election, "election", 0, "Raft election timeout (default: --raft-timing's)")
	durationFlag(f, &cfg.LeaderLease, "leader-lease", 0, "Raft leader lease, at most --heartbeat (default: --raft-timing's)")
	durationFlag(f, &cfg.DrainMax, "drain-max", registrar.DefaultMaxDrain, "longest a leaving agent's real servers stay draining")
	durationFlag(f, &cfg.ReapDelay, "reap-delay", registrar.DefaultReapDelay, "how long a failed agent's real servers stay (at weight 0) before removal")
	f.StringVar(&cfg.ExecCheckDir, "exec-check-dir", "", "directory exec health checks' commands must live in (unset: exec checks are refused: a command in the replicated state runs on every director)")
	f.StringVar(&cfg.LogLevel, "log-level", "info", "debug, info, warn or error")
	cfg.notifyConfig.register(f)
	return cmd
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "director"
	}
	return h
}

func (c *directorConfig) syncConfig() (*syncd.Config, error) {
	if !c.SyncDaemon || c.VIPOnly {
		return nil, nil
	}
	sc := syncd.Config{Interface: cmp.Or(c.SyncInterface, c.VIPInterface), SyncID: c.SyncID, Port: c.SyncPort, TTL: c.SyncTTL}
	if c.SyncGroup != "" {
		g, err := netip.ParseAddr(c.SyncGroup)
		if err != nil {
			return nil, usagef("--sync-group: %v", err)
		}
		sc.Group = g
	}
	if err := sc.Validate(); err != nil {
		return nil, usagef("sync daemon: %v", err)
	}
	return &sc, nil
}

// options turns the command line and config file into a director's Options.
func (c *directorConfig) options(log *slog.Logger) (daemon.Options, error) {
	if err := fsm.ValidateName(c.ID); err != nil {
		return daemon.Options{}, usagef("--id: %v", err)
	}
	key, err := gossip.DecodeSecretKey(c.GossipKey)
	if err != nil {
		return daemon.Options{}, usagef("--gossip-key: %v", err)
	}
	sync, err := c.syncConfig()
	if err != nil {
		return daemon.Options{}, err
	}
	hooks, err := c.hooks()
	if err != nil {
		return daemon.Options{}, err
	}
	timing, err := c.timing()
	if err != nil {
		return daemon.Options{}, err
	}
	tracked, err := c.trackConfig()
	if err != nil {
		return daemon.Options{}, err
	}
	fence, err := vip.ParseFenceMode(c.VIPFence)
	if err != nil {
		return daemon.Options{}, usagef("--vip-fence: %v", err)
	}
	opts := daemon.Options{
		ID: c.ID, DataDir: c.DataDir,
		RaftBind: c.RaftAddr, RaftAdvertise: c.RaftAdvertise,
		APIBind: c.APIAddr, APIAdvertise: c.APIAdvertise,
		GossipBind: c.GossipAddr, GossipKey: key,
		Bootstrap: c.Bootstrap, Join: c.Join, ClusterID: c.ClusterID, Witness: c.Witness,
		VIPOnly: c.VIPOnly, Track: tracked,
		HeartbeatTimeout:   timing.HeartbeatTimeout,
		ElectionTimeout:    timing.ElectionTimeout,
		LeaderLeaseTimeout: timing.LeaderLeaseTimeout,
		VIP: vip.Config{Interface: c.VIPInterface, Burst: c.GARPBurst,
			BurstInterval: time.Duration(c.GARPInterval), Refresh: time.Duration(c.GARPRefresh)},
		VIPFence:     fence,
		Security:     c.security(),
		Sync:         sync,
		DrainMax:     time.Duration(c.DrainMax),
		ReapDelay:    time.Duration(c.ReapDelay),
		ExecCheckDir: c.ExecCheckDir,
		Logger:       log,
	}
	opts.Notify, opts.NotifyTimeout = hooks, time.Duration(c.NotifyTimeout)
	return opts, nil
}

// optionFlags names the flag of each daemon option a check may refuse.
var optionFlags = map[string]string{
	"Bootstrap": "--bootstrap", "APIBind": "--api-addr", "APIAdvertise": "--api-advertise",
	"RaftBind": "--raft-addr", "GossipBind": "--gossip-addr", "Security": "--token", "ClusterID": "--cluster-id",
	"VIPOnly": "--vip-only", "Track": "--track",
}

// timing is --raft-timing's profile with whatever --heartbeat, --election and
// --leader-lease set over it; the cluster validates the result.
func (c *directorConfig) timing() (cluster.Timing, error) {
	t, err := cluster.ProfileTiming(c.RaftTiming)
	if err != nil {
		return t, usagef("--raft-timing: %v", err)
	}
	t.HeartbeatTimeout = cmp.Or(time.Duration(c.Heartbeat), t.HeartbeatTimeout)
	t.ElectionTimeout = cmp.Or(time.Duration(c.Election), t.ElectionTimeout)
	t.LeaderLeaseTimeout = cmp.Or(time.Duration(c.LeaderLease), t.LeaderLeaseTimeout)
	return t, nil
}

func profileUsage() string {
	var parts []string
	for _, p := range cluster.TimingProfiles {
		parts = append(parts, fmt.Sprintf("%s (%v/%v/%v: %s)", p.Name, p.Timing.HeartbeatTimeout, p.Timing.ElectionTimeout, p.Timing.LeaderLeaseTimeout, p.Use))
	}
	return strings.Join(parts, "; ")
}

// trackConfig compiles the --track checks; none is nil.
func (c *directorConfig) trackConfig() (*track.Config, error) {
	if len(c.Track) == 0 {
		return nil, nil
	}
	cfg := &track.Config{Interval: time.Duration(c.TrackInterval), Rise: c.TrackRise, Fall: c.TrackFall}
	if cfg.Interval <= 0 || c.TrackTimeout <= 0 || cfg.Rise < 1 || cfg.Fall < 1 {
		return nil, usagef("--track-interval and --track-timeout must be positive, --track-rise and --track-fall at least 1")
	}
	for _, spec := range c.Track {
		chk, err := track.Parse(spec, time.Duration(c.TrackTimeout))
		if err != nil {
			return nil, usagef("--track: %v", err)
		}
		cfg.Checks = append(cfg.Checks, chk)
	}
	return cfg, nil
}

func runDirector(ctx context.Context, cfg *directorConfig) error {
	log, err := newLogger(cfg.LogLevel)
	if err != nil {
		return err
	}
	opts, err := cfg.options(log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	d, err := daemon.New(opts)
	var oe *daemon.OptionError
	if errors.As(err, &oe) {
		return usagef("%s: %s", optionFlags[oe.Option], oe.Reason)
	}
	if err != nil {
		return err
	}
	reloadOnSIGHUP(ctx, d.ReloadTLS, log)
	return d.Run(ctx)
}
