package main

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftlvs/raftlvs/cluster/gossip"
	"github.com/raftlvs/raftlvs/fsm"
	"github.com/raftlvs/raftlvs/realserver"
)

// agentConfig is everything `raftlvs agent` takes, from flags or a config file.
type agentConfig struct {
	ID           string   `json:"id"`
	Addr         string   `json:"addr"`
	Join         addrList `json:"join"`
	GossipAddr   string   `json:"gossip_addr"`
	GossipKey    string   `json:"gossip_key"`
	Services     []string `json:"service"`
	Interface    string   `json:"interface"`
	StateFile    string   `json:"state_file"`
	Poll         duration `json:"poll"`
	DrainTimeout duration `json:"drain_timeout"`
	NATGateway   string   `json:"nat_gateway"`
	Check        string   `json:"check"`
	ExecCheckDir string   `json:"exec_check_dir"`
	LogLevel     string   `json:"log_level"`
	Insecure     bool     `json:"insecure"`
	Token        string   `json:"token"`
	TLSDir       string   `json:"tls_dir"`
	TLSCert      string   `json:"tls_cert"`
	TLSKey       string   `json:"tls_key"`
	TLSCA        string   `json:"tls_ca"`
}

func newAgentCmd() *cobra.Command { return agentCmd(&agentConfig{}, runAgent) }

// agentCmd binds the flags to cfg and hands the merged config to run.
func agentCmd(cfg *agentConfig, run func(context.Context, *agentConfig) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a real-server agent: register over gossip, configure this host for DR/TUN/NAT",
		Long: `Run on a real server. The agent joins the directors' gossip pool (--join, their gossip
addresses), announces the services it serves (--service NAME[:PORT][@WEIGHT], repeatable),
learns each service's VIP and forwarding method from the directors, and configures this
host: for DR, arp_ignore=1 and arp_announce=2 before the VIP goes on lo; for TUN, tunl0 with
the VIP and rp_filter relaxed; for NAT, nothing. On SIGTERM it drains, leaves the pool and
undoes exactly what it changed. Flags override the --config file (YAML).`,
		Args:        exactArgs(0, "no arguments"),
		RunE:        runE(configured(cfg, run)),
		Annotations: map[string]string{"credentials": "none"},
	}
	f := cmd.Flags()
	f.String("config", "", "config file (YAML)")
	f.StringVar(&cfg.ID, "id", hostname(), "agent id, unique among agents")
	f.StringVar(&cfg.Addr, "addr", "", "this real server's address, as the directors reach it (required)")
	f.Var(&cfg.Join, "join", "gossip address(es) of directors, HOST:PORT[,…] (required)")
	f.StringVar(&cfg.GossipAddr, "gossip-addr", "", "gossip listen address HOST:PORT (default: --addr, port 7946)")
	f.StringVar(&cfg.GossipKey, "gossip-key", os.Getenv("RAFTLVS_GOSSIP_KEY"), "gossip encryption key, base64 (env RAFTLVS_GOSSIP_KEY)")
	f.StringArrayVar(&cfg.Services, "service", nil, "a service served here, NAME[:PORT][@WEIGHT] (repeatable)")
	f.StringVar(&cfg.Interface, "interface", "", "egress interface for the ARP sysctls (default: the one holding --addr)")
	f.StringVar(&cfg.StateFile, "state-file", "/var/lib/raftlvs/agent.json", "what the agent changed, for a faithful undo")
	durationFlag(f, &cfg.Poll, "poll", realserver.DefaultPollInterval, "how often services are re-read and the host re-checked")
	durationFlag(f, &cfg.DrainTimeout, "drain-timeout", realserver.DefaultDrainTimeout, "longest wait, on stop, for the directors to finish draining this server (its connections ending)")
	f.StringVar(&cfg.NATGateway, "nat-gateway", "", "for NAT services, route replies back to clients via this address (a director or the NAT VIP), replacing the default route while serving; restored on stop")
	f.StringVar(&cfg.Check, "check", "", "check the services served here locally and publish the verdict ("+checkSyntax+"); a down takes this real server out")
	f.StringVar(&cfg.ExecCheckDir, "exec-check-dir", "", "directory an exec --check's command must live in")
	f.StringVar(&cfg.LogLevel, "log-level", "info", "debug, info, warn or error")
	agentTLSFlags(cmd, cfg)
	return cmd
}

func runAgent(ctx context.Context, cfg *agentConfig) error {
	log, err := newLogger(cfg.LogLevel)
	if err != nil {
		return err
	}
	addr, err := netip.ParseAddr(cfg.Addr)
	if err != nil {
		return usagef("--addr: %v", err)
	}
	if len(cfg.Join) == 0 {
		return usagef("--join: give the gossip address of at least one director")
	}
	specs, err := realserver.ParseServiceSpecs(cfg.Services)
	if err != nil {
		return usagef("--service: %v", err)
	}
	key, err := gossip.DecodeSecretKey(cfg.GossipKey)
	if err != nil {
		return usagef("--gossip-key: %v", err)
	}
	var natRoute realserver.Route
	if cfg.NATGateway != "" {
		if natRoute.Via, err = netip.ParseAddr(cfg.NATGateway); err != nil {
			return usagef("--nat-gateway: %v", err)
		}
	}
	var check *fsm.HealthCheck
	if cfg.Check != "" {
		if check, err = parseCheckFlag("--check", cfg.Check, "off"); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	d, err := realserver.NewDaemon(realserver.DaemonConfig{
		Agent: realserver.Config{
			ID: cfg.ID, Addr: addr, Services: specs, Interface: cfg.Interface, StateFile: cfg.StateFile,
			NATRoute: natRoute, PollInterval: time.Duration(cfg.Poll), DrainTimeout: time.Duration(cfg.DrainTimeout), Logger: log,
		},
		Join: cfg.Join, GossipBind: cfg.GossipAddr, GossipKey: key,
		Check: check, ExecCheckDir: cfg.ExecCheckDir,
		Security: cfg.security(),
	})
	if errors.Is(err, realserver.ErrBadSpec) {
		return usageError{err}
	}
	if err != nil {
		return err
	}
	log.Info("agent running", "id", cfg.ID, "addr", addr, "gossip", d.GossipAddr(), "services", cfg.Services)
	return d.Run(ctx)
}
