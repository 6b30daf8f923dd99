package realserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/raftlvs/raftlvs/cluster/gossip"
	"github.com/raftlvs/raftlvs/fsm"
)

// DaemonConfig is a whole agent: what it serves (Agent) and how it reaches the directors.
type DaemonConfig struct {
	Agent Config
	// Join lists directors' gossip addresses (HOST:PORT); at least one.
	Join []string
	// GossipBind is where the agent's gossip listens (HOST:PORT, port 0 picks one);
	// "" is the agent's address on gossip.DefaultPort.
	GossipBind string
	GossipKey  []byte
	// Host, if set, is the kernel the agent configures instead of this namespace's (the
	// namespace tests give one of a test namespace).
	Host Host
	// Check, if set, is run on this host against each service it serves; its verdicts
	// go out in the gossip metadata. ExecCheckDir is where an exec check's command must
	// live.
	Check        *fsm.HealthCheck
	ExecCheckDir string
	// Pool, if set, is a gossip pool the caller joined with AgentMeta(Agent) and owns
	// (the namespace tests crash an agent by shutting its pool down); Join, GossipBind
	// and GossipKey are then unused.
	Pool *gossip.Pool
	// Security is how the agent authenticates to the directors' API (tls.go); the zero
	// value is the secure default.
	Security Security
}

// Daemon is one real server's agent, assembled: the gossip pool it announces itself in,
// its kernel, and the Agent that keeps that kernel configured.
type Daemon struct {
	agent  *Agent
	checks *LocalChecks // nil without a local check
	pool   *gossip.Pool
	close  []func()
}

// NewDaemon joins the gossip pool (announcing the agent as draining until its host is
// configured) and opens the kernel. Nothing on the host changes before Run.
func NewDaemon(cfg DaemonConfig) (_ *Daemon, err error) {
	// Check the agent before it announces itself to anyone.
	if err := cfg.Agent.setDefaults(); err != nil {
		return nil, err
	}
	d := &Daemon{pool: cfg.Pool}
	defer func() {
		if err != nil {
			d.shutdown()
		}
	}()
	meta := AgentMeta(cfg.Agent)
	if d.pool == nil {
		if d.pool, err = joinPool(cfg, meta); err != nil {
			return nil, err
		}
		d.close = append(d.close, func() { d.pool.Shutdown() })
	}
	h := cfg.Host
	if h == nil {
		nh, err := NewNetlinkHost()
		if err != nil {
			return nil, err
		}
		d.close = append(d.close, func() { nh.Close() })
		h = nh
	}
	directors := &PoolDirectors{Pool: d.pool}
	if directors.Client, err = d.secure(cfg, directors); err != nil {
		return nil, err
	}
	members := NewPoolMembership(d.pool, meta)
	deps := Deps{Host: h, Services: directors, Registrations: directors, Members: members}
	if cfg.Check != nil {
		if d.checks, err = NewLocalChecks(cfg.Agent, cfg.Check, members, cfg.ExecCheckDir); err != nil {
			return nil, err
		}
		deps.Checks = d.checks
	}
	if d.agent, err = NewAgent(cfg.Agent, deps); err != nil {
		return nil, err
	}
	return d, nil
}

// GossipAddr is where the agent's gossip listens.
func (d *Daemon) GossipAddr() netip.AddrPort { return d.pool.LocalAddr() }

// Run keeps the host configured until ctx ends, then drains, leaves the pool, undoes
// what it changed on the host and closes everything.
func (d *Daemon) Run(ctx context.Context) error {
	defer d.shutdown()
	if d.checks != nil {
		checkCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := d.checks.Run(checkCtx); err != nil {
				d.agent.log.Error("this agent's own checks stopped", "err", err)
			}
		}()
		defer func() { stop(); <-done }()
	}
	err := d.agent.Run(ctx)
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

func joinPool(cfg DaemonConfig, meta gossip.Meta) (*gossip.Pool, error) {
	if len(cfg.Join) == 0 {
		return nil, fmt.Errorf("join: give the gossip address of at least one director: %w", ErrBadSpec)
	}
	bind := cfg.GossipBind
	if bind == "" {
		bind = netip.AddrPortFrom(cfg.Agent.Addr.Unmap(), gossip.DefaultPort).String()
	}
	host, portText, err := net.SplitHostPort(bind)
	port, perr := strconv.ParseUint(portText, 10, 16)
	if err != nil || perr != nil {
		return nil, fmt.Errorf("gossip address %q is not HOST:PORT: %w", bind, ErrBadSpec)
	}
	pool, err := gossip.New(gossip.Config{
		NodeName: cfg.Agent.ID, BindAddr: host, BindPort: int(port), Join: cfg.Join,
		SecretKey: cfg.GossipKey, Logger: cfg.Agent.Logger,
	}, meta)
	if err != nil {
		return nil, fmt.Errorf("join the gossip pool: %w", err)
	}
	return pool, nil
}

func (d *Daemon) shutdown() {
	for i := len(d.close) - 1; i >= 0; i-- {
		d.close[i]()
	}
	d.close = nil
}
