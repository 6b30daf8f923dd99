package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftlvs/raftlvs/cluster/api"
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
	LogLevel     string   `json:"log_level"`
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
		Args: exactArgs(0, "no arguments"),
		RunE: runE(configured(cfg, run)),
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
	durationFlag(f, &cfg.Poll, "poll", 5*time.Second, "how often services are re-read and the host re-checked")
	durationFlag(f, &cfg.DrainTimeout, "drain-timeout", realserver.DefaultDrainTimeout, "longest wait, on stop, for the directors to finish draining this server (its connections ending)")
	f.StringVar(&cfg.LogLevel, "log-level", "info", "debug, info, warn or error")
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
	gossipAddr := cfg.GossipAddr
	if gossipAddr == "" {
		gossipAddr = netip.AddrPortFrom(addr, gossip.DefaultPort).String()
	}
	host, port, err := splitHostPort(gossipAddr)
	if err != nil {
		return usagef("--gossip-addr: %v", err)
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	meta := gossip.Meta{Role: gossip.RoleAgent, ID: cfg.ID, Addr: addr, Draining: true}
	for _, s := range specs {
		meta.Services = append(meta.Services, gossip.ServicePort{Service: s.Name, Port: s.Port, Weight: s.Weight})
	}
	// Joined draining: the agent clears it once its host is configured, so no director
	// sends traffic to a real server that would drop it.
	pool, err := gossip.New(gossip.Config{
		NodeName: cfg.ID, BindAddr: host, BindPort: port, Join: cfg.Join,
		SecretKey: key, Logger: log,
	}, meta)
	if err != nil {
		return fmt.Errorf("join the gossip pool: %w", err)
	}
	defer pool.Shutdown()

	h, err := realserver.NewNetlinkHost()
	if err != nil {
		return err
	}
	defer h.Close()
	directors := &poolDirectors{pool: pool}
	agent, err := realserver.NewAgent(realserver.Config{
		ID: cfg.ID, Addr: addr, Services: specs, Interface: cfg.Interface, StateFile: cfg.StateFile,
		PollInterval: time.Duration(cfg.Poll), DrainTimeout: time.Duration(cfg.DrainTimeout), Logger: log,
	}, realserver.Deps{
		Host:          h,
		Services:      directors,
		Registrations: directors,
		Members:       &poolMembership{pool: pool, meta: meta},
	})
	if err != nil {
		return usagef("%v", err)
	}
	log.Info("agent running", "id", cfg.ID, "addr", addr, "gossip", gossipAddr, "services", cfg.Services)
	return agent.Run(ctx)
}

// poolDirectors reaches the directors' API at the addresses their gossip metadata gives.
type poolDirectors struct{ pool *gossip.Pool }

func (p *poolDirectors) source() (realserver.APISource, error) {
	var addrs []string
	for _, m := range p.pool.Members() {
		if m.State == gossip.StateAlive && m.Meta.Role == gossip.RoleDirector && m.Meta.APIAddr != "" {
			addrs = append(addrs, m.Meta.APIAddr)
		}
	}
	if len(addrs) == 0 {
		return realserver.APISource{}, fmt.Errorf("no director in the gossip pool yet: %w", realserver.ErrNoDirector)
	}
	slices.Sort(addrs)
	return realserver.APISource{Client: api.NewClient(addrs...)}, nil
}

func (p *poolDirectors) Service(ctx context.Context, name string) (fsm.Service, error) {
	src, err := p.source()
	if err != nil {
		return fsm.Service{}, err
	}
	return src.Service(ctx, name)
}

func (p *poolDirectors) Drained(ctx context.Context, service, agentID string, addr netip.Addr) (bool, error) {
	src, err := p.source()
	if err != nil {
		return false, err
	}
	return src.Drained(ctx, service, agentID, addr)
}

// poolMembership is the agent's metadata in the pool.
type poolMembership struct {
	pool *gossip.Pool
	mu   sync.Mutex
	meta gossip.Meta
}

// metaTimeout bounds how long a metadata update waits to be gossiped.
const metaTimeout = 5 * time.Second

func (p *poolMembership) SetDraining(draining bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.meta.Draining == draining {
		return nil
	}
	m := p.meta
	m.Draining = draining
	if err := p.pool.UpdateMeta(m, metaTimeout); err != nil {
		return fmt.Errorf("announce draining=%t: %w", draining, err)
	}
	p.meta = m
	return nil
}

func (p *poolMembership) Leave(timeout time.Duration) error { return p.pool.Leave(timeout) }
