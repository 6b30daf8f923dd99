package realserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// Defaults of Config.
const (
	DefaultPollInterval = 5 * time.Second
	DefaultRetryMin     = 250 * time.Millisecond
	// DefaultDrainTimeout outlasts the directors' default maximum drain (60 s), so that
	// by default the directors, counting connections, decide when the drain is over.
	DefaultDrainTimeout = 90 * time.Second
	DefaultLeaveTimeout = 5 * time.Second
)

// Config is one real server's agent.
type Config struct {
	ID       string     // unique among agents; its real servers have origin agent:ID
	Addr     netip.Addr // this real server's address, as the directors reach it
	Services []ServiceSpec

	// Interface is the egress interface whose ARP sysctls DR and TUN raise; "" is the
	// interface that holds Addr.
	Interface string
	// StateFile records what the agent changed on the host, so that a restarted agent
	// still restores the operator's originals. Required.
	StateFile string
	// NATRoute, off unless Via is set, is a route back to clients through a director,
	// installed while the agent serves a NAT service (see ConfiguratorConfig.NATRoute).
	NATRoute Route

	// PollInterval is how often services are re-read and the host re-checked for drift.
	PollInterval time.Duration
	// RetryMin is the first retry delay while a service cannot be resolved or the host
	// not configured; it doubles up to PollInterval.
	RetryMin time.Duration
	// DrainTimeout bounds the wait for the directors to drain this real server on a
	// graceful stop.
	DrainTimeout time.Duration
	// LeaveTimeout bounds the gossip leave broadcast.
	LeaveTimeout time.Duration

	Logger *slog.Logger
}

// Deps are the agent's collaborators.
type Deps struct {
	Host     Host
	Services ServiceSource
	// Registrations answers "are my real servers drained yet?" on a graceful stop; nil
	// skips the wait (the agent leaves as soon as it has asked to drain).
	Registrations RegistrationView
	// Members is the gossip pool, joined with draining=true metadata: the agent clears
	// it once the host is configured, so no director sends traffic to a real server
	// that would drop it.
	Members Membership
	// Checks, if set, is the agent's own check of its services; each round gives it the
	// services as the cluster knows them.
	Checks interface {
		SetServices(known map[string]fsm.Service)
	}
}

// Agent keeps a real server's kernel configured for the services it serves, and takes it
// out of rotation and undoes its configuration when it stops.
type Agent struct {
	cfg  Config
	deps Deps
	conf *Configurator
	log  *slog.Logger
}

// NewAgent validates cfg and loads what an earlier run of the agent changed on the host.
func NewAgent(cfg Config, deps Deps) (*Agent, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if deps.Host == nil || deps.Services == nil || deps.Members == nil {
		return nil, fmt.Errorf("agent needs a host, a service source and a membership: %w", ErrBadSpec)
	}
	if cfg.Interface == "" {
		link, err := deps.Host.LinkOf(cfg.Addr)
		if err != nil {
			return nil, fmt.Errorf("find the interface of %s (or set one): %w", cfg.Addr, err)
		}
		cfg.Interface = link
	}
	conf, err := NewConfigurator(deps.Host, ConfiguratorConfig{Interface: cfg.Interface, StateFile: cfg.StateFile, NATRoute: cfg.NATRoute, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	return &Agent{cfg: cfg, deps: deps, conf: conf, log: cfg.Logger.With("agent", cfg.ID)}, nil
}

func (c *Config) setDefaults() error {
	if err := validateID(c.ID); err != nil {
		return fmt.Errorf("agent id: %w", err)
	}
	c.Addr = c.Addr.Unmap()
	if !c.Addr.IsValid() || c.Addr.IsUnspecified() || c.Addr.IsMulticast() || c.Addr.IsLoopback() {
		return fmt.Errorf("agent address %s is not a unicast address the directors can reach: %w", c.Addr, ErrBadSpec)
	}
	if len(c.Services) == 0 {
		return fmt.Errorf("no services to serve: %w", ErrBadSpec)
	}
	seen := map[string]bool{}
	for _, s := range c.Services {
		if err := s.Validate(); err != nil {
			return fmt.Errorf("service %s: %w", s.Name, err)
		}
		if seen[s.Name] {
			return fmt.Errorf("service %s is named twice: %w", s.Name, ErrBadSpec)
		}
		seen[s.Name] = true
	}
	if c.StateFile == "" {
		return fmt.Errorf("a state file is required: %w", ErrBadSpec)
	}
	for _, d := range []struct {
		p   *time.Duration
		def time.Duration
	}{{&c.PollInterval, DefaultPollInterval}, {&c.RetryMin, DefaultRetryMin}, {&c.DrainTimeout, DefaultDrainTimeout}, {&c.LeaveTimeout, DefaultLeaveTimeout}} {
		if *d.p < 0 {
			return fmt.Errorf("negative duration %s: %w", *d.p, ErrBadSpec)
		}
		if *d.p == 0 {
			*d.p = d.def
		}
	}
	c.RetryMin = min(c.RetryMin, c.PollInterval)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Interface is the egress interface in use (Config.Interface or the one found).
func (a *Agent) Interface() string { return a.cfg.Interface }

// Run keeps the host converged to the services until ctx ends, then stops gracefully:
// drain, wait for the directors, leave the pool, undo the host configuration. It returns
// the errors of that stop; the loop itself only logs, since the cluster or the host may
// recover on the next round.
func (a *Agent) Run(ctx context.Context) error {
	r := &rounds{known: map[string]fsm.Service{}, answered: map[string]bool{}, lastErr: map[string]string{}}
	ready := false
	retry := a.cfg.RetryMin
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return a.stop(context.WithoutCancel(ctx))
		case <-timer.C:
		}
		settled := a.round(ctx, r)
		if settled && !ready {
			if err := a.deps.Members.SetDraining(false); err != nil {
				a.log.Error("announce ready", "err", err)
				settled = false
			} else {
				a.log.Info("host configured; in rotation", "services", len(r.known))
				ready = true
			}
		}
		wait := a.cfg.PollInterval
		if !settled {
			wait, retry = retry, min(2*retry, a.cfg.PollInterval)
		} else {
			retry = a.cfg.RetryMin
		}
		timer.Reset(wait)
	}
}

// rounds is what the agent's loop carries from one round to the next.
type rounds struct {
	known    map[string]fsm.Service // the cluster's last answer for each service it knows
	answered map[string]bool        // services the cluster has answered for, found or not
	lastErr  map[string]string      // the last error logged per service, to log each once
}

func (r *rounds) warnOnce(log *slog.Logger, key, msg string, err error) {
	if r.lastErr[key] != err.Error() {
		log.Warn(msg, "service", key, "err", err)
		r.lastErr[key] = err.Error()
	}
}

// round resolves every service and converges the host once. It reports whether the host
// is configured for every service the cluster knows.
func (a *Agent) round(ctx context.Context, r *rounds) bool {
	settled := true
	for _, spec := range a.cfg.Services {
		svc, err := a.deps.Services.Service(ctx, spec.Name)
		switch {
		case err == nil:
			if old, ok := r.known[spec.Name]; !ok || old.VIP != svc.VIP || old.Forwarding != svc.Forwarding {
				a.log.Info("service", "name", spec.Name, "vip", svc.VIP, "forwarding", svc.Forwarding)
			}
			r.known[spec.Name] = svc
			r.answered[spec.Name] = true
			delete(r.lastErr, spec.Name)
		case errors.Is(err, fsm.ErrNotFound):
			// The cluster has no such service: nothing can be routed here for it, and a
			// VIP configured for it earlier must go.
			delete(r.known, spec.Name)
			r.answered[spec.Name] = true
			r.warnOnce(a.log, spec.Name, "the cluster has no such service", err)
		case ctx.Err() != nil:
			return false
		default:
			settled = false
			r.warnOnce(a.log, spec.Name, "cannot resolve service; keeping what is known", err)
		}
	}
	if a.deps.Checks != nil {
		a.deps.Checks.SetServices(r.known)
	}
	// Until the cluster has answered for every service, the host is left as it is: an
	// agent restarted while the directors are unreachable must not remove the VIPs that
	// its real servers are still serving traffic on.
	if len(r.answered) < len(a.cfg.Services) {
		return false
	}
	bindings, err := a.bindings(r.known)
	if err != nil {
		settled = false
		r.warnOnce(a.log, "*", "services this agent cannot configure", err)
	} else {
		delete(r.lastErr, "*")
	}
	if err := a.conf.Converge(bindings); err != nil {
		r.warnOnce(a.log, "", "cannot configure the host", err)
		return false
	}
	delete(r.lastErr, "")
	return settled
}

// bindings are the VIPs and methods of the known services, in a stable order.
func (a *Agent) bindings(known map[string]fsm.Service) ([]Binding, error) {
	var out []Binding
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(known)) {
		svc := known[name]
		if svc.IsFWMark() {
			if svc.Forwarding != fsm.NAT {
				errs = append(errs, fmt.Errorf("service %s matches fwmark %d: its VIPs are not known to the cluster: %w", name, svc.FWMark, ErrUnsupported))
			}
			continue
		}
		b := Binding{VIP: svc.VIP, Method: svc.Forwarding}
		if !slices.Contains(out, b) {
			out = append(out, b)
		}
	}
	return out, errors.Join(errs...)
}

// stop takes the real server out of rotation before its VIPs go: first drain (the
// directors set weight 0, established connections carry on), then leave the pool, and
// only then remove the VIPs those connections still use.
func (a *Agent) stop(ctx context.Context) error {
	var errs []error
	if err := a.deps.Members.SetDraining(true); err != nil {
		errs = append(errs, fmt.Errorf("announce draining: %w", err))
	} else {
		a.waitDrained(ctx)
	}
	if err := a.deps.Members.Leave(a.cfg.LeaveTimeout); err != nil {
		errs = append(errs, fmt.Errorf("leave the pool: %w", err))
	}
	if err := a.conf.Undo(); err != nil {
		errs = append(errs, fmt.Errorf("undo host configuration: %w", err))
	}
	if len(errs) == 0 {
		a.log.Info("left the cluster; host configuration undone")
	}
	return errors.Join(errs...)
}

// waitDrained polls the directors until every real server of this agent is gone (the
// leader removes it once its connections have ended), for at most DrainTimeout.
func (a *Agent) waitDrained(ctx context.Context) {
	if a.deps.Registrations == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, a.cfg.DrainTimeout)
	defer cancel()
	poll := min(a.cfg.PollInterval, time.Second)
	pending := slices.Clone(a.cfg.Services)
	for {
		pending = slices.DeleteFunc(pending, func(s ServiceSpec) bool {
			drained, err := a.deps.Registrations.Drained(ctx, s.Name, a.cfg.ID, a.cfg.Addr)
			if err != nil && ctx.Err() == nil {
				a.log.Warn("ask whether drained", "service", s.Name, "err", err)
			}
			return err == nil && drained
		})
		if len(pending) == 0 {
			a.log.Info("directors drained this real server")
			return
		}
		select {
		case <-ctx.Done():
			a.log.Warn("drain timeout; leaving anyway", "timeout", a.cfg.DrainTimeout, "still_active", len(pending))
			return
		case <-time.After(poll):
		}
	}
}
