// Package registrar turns the gossip membership of real-server agents into RealServer
// entries of the replicated state. It runs on the Raft leader only, after its Barrier,
// as Consul reconciles serf members into its catalog: a full pass at start, a pass on
// every membership change, and a periodic pass that retries failed writes and runs the
// drain and reap timers. It writes only what differs from the state.
package registrar

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/raftlvs/raftlvs/cluster/gossip"
	"github.com/raftlvs/raftlvs/fsm"
)

// Defaults.
const (
	// DefaultMaxDrain bounds how long a leaving agent's real servers wait for their
	// connections to end before they are removed anyway.
	DefaultMaxDrain = 60 * time.Second
	// DefaultMinDrain is how long a leaving agent's real servers stay at weight 0 before
	// their connections are counted: long enough for every director to apply the drain.
	DefaultMinDrain = 2 * time.Second
	// DefaultReapDelay is how long a failed agent's real servers stay (out of rotation)
	// before they are removed, so that a flapping agent does not churn the table.
	DefaultReapDelay = 30 * time.Second
	// DefaultStartupGrace is how long after the first pass an agent absent from the pool
	// is left alone: a new leader's pool may not list every agent yet (agents rejoin
	// every gossip.DefaultRejoinInterval after losing every director).
	DefaultStartupGrace = 15 * time.Second
	// DefaultInterval is the period of the full pass.
	DefaultInterval = 5 * time.Second
)

// ErrBadConfig classifies configuration errors returned by New.
var ErrBadConfig = errors.New("bad registrar config")

// MemberSource is the gossip pool as the registrar sees it (*gossip.Pool).
type MemberSource interface {
	Members() []gossip.Member
	Events() <-chan gossip.Event
}

// StateView reads the replicated state (the cluster node's View).
type StateView interface {
	View(func(*fsm.State))
}

// Writer commits a command through Raft (the leader's cluster.Node.Apply).
type Writer interface {
	Apply(ctx context.Context, c fsm.Command) error
}

// ConnCounter counts the active connections of a real server in the local IPVS table (a
// closed connection lingers as inactive for minutes). An error means "unknown": the real
// server then waits for MaxDrain.
type ConnCounter interface {
	Connections(rs fsm.RealServer) (int, error)
}

// Config wires a Registrar.
type Config struct {
	Members MemberSource
	State   StateView
	Writer  Writer
	Conns   ConnCounter // optional: without it a drain always lasts MaxDrain
	// StateChanges, optional, signals state changes (the node's Watch): an agent that
	// announced a service the cluster did not have yet is registered as soon as the
	// service is added, not at the next periodic pass.
	StateChanges <-chan struct{}
	// Admit, if set, decides whether an agent's gossip metadata is believed: the
	// gossip key is shared by every agent, so with TLS only the addresses an agent's
	// certificate names are registered (the daemon's check). An agent it refuses is
	// treated as absent: nothing is registered for it, and what it had is retired.
	Admit func(agentID string, addr netip.Addr) error

	MinDrain     time.Duration
	MaxDrain     time.Duration
	ReapDelay    time.Duration
	StartupGrace time.Duration // negative: none
	Interval     time.Duration

	Now    func() time.Time // the clock; time.Now by default
	Logger *slog.Logger
}

// Registrar reconciles agents into real servers. Its timers live in memory: a new leader
// starts them afresh, which can only lengthen a drain or a reap, never shorten one.
type Registrar struct {
	cfg Config
	log *slog.Logger

	started     time.Time               // the first pass
	failedSince map[string]time.Time    // agent id → first pass that saw it failed or absent
	drainSince  map[fsm.RSKey]time.Time // real server → first pass that drained it for a leave
	warned      map[string]bool         // warn-once keys
	writeFailed map[fsm.RSKey]error     // last refused write per real server, logged once
}

// New checks cfg and fills in defaults.
func New(cfg Config) (*Registrar, error) {
	if cfg.Members == nil || cfg.State == nil || cfg.Writer == nil {
		return nil, fmt.Errorf("%w: Members, State and Writer are required", ErrBadConfig)
	}
	if cfg.MinDrain < 0 || cfg.MaxDrain < 0 || cfg.ReapDelay < 0 || cfg.Interval < 0 {
		return nil, fmt.Errorf("%w: MinDrain, MaxDrain, ReapDelay and Interval must not be negative", ErrBadConfig)
	}
	cfg.MinDrain = cmp.Or(cfg.MinDrain, DefaultMinDrain)
	cfg.MaxDrain = cmp.Or(cfg.MaxDrain, DefaultMaxDrain)
	cfg.ReapDelay = cmp.Or(cfg.ReapDelay, DefaultReapDelay)
	cfg.StartupGrace = cmp.Or(cfg.StartupGrace, DefaultStartupGrace)
	cfg.Interval = cmp.Or(cfg.Interval, DefaultInterval)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Registrar{
		cfg:         cfg,
		log:         cfg.Logger.With("component", "registrar"),
		failedSince: map[string]time.Time{},
		drainSince:  map[fsm.RSKey]time.Time{},
		warned:      map[string]bool{},
		writeFailed: map[fsm.RSKey]error{},
	}, nil
}

// Watcher signals changes of the replicated state (the cluster node's Watch).
type Watcher interface {
	Watch() (<-chan struct{}, func())
}

// Lead is the registrar as a leader duty. Each term gets a fresh Registrar: its drain and
// reap timers must start anew with the leadership, never carry over from an earlier term
// of this node. cfg.StateChanges is w's.
func Lead(cfg Config, w Watcher) func(ctx context.Context, started func()) error {
	return func(ctx context.Context, started func()) error {
		changes, cancel := w.Watch()
		defer cancel()
		c := cfg
		c.StateChanges = changes
		r, err := New(c)
		if err != nil {
			return err
		}
		started()
		return r.Run(ctx)
	}
}

// Run reconciles until ctx is done: once now, then after every membership change and
// every Interval. A pass that fails is logged and retried by the next one. The caller
// runs it on the leader after a Barrier and cancels it when leadership is lost.
func (r *Registrar) Run(ctx context.Context) error {
	ticker := time.NewTicker(r.cfg.Interval)
	defer ticker.Stop()
	events := r.cfg.Members.Events()
	for {
		if err := r.Reconcile(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("agent registration pass incomplete; retrying", "in", r.cfg.Interval, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		case <-r.cfg.StateChanges:
		case _, ok := <-events:
			if !ok { // the pool shut down: keep the periodic pass
				events = nil
			}
			drain(events) // one pass covers a burst of changes
		}
	}
}

// drain discards the events already waiting.
func drain(events <-chan gossip.Event) {
	for {
		select {
		case _, ok := <-events:
			if !ok {
				return
			}
		default:
			return
		}
	}
}
