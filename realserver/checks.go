package realserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	"github.com/raftlvs/raftlvs/cluster/gossip"
	"github.com/raftlvs/raftlvs/fsm"
	"github.com/raftlvs/raftlvs/healthd"
)

// LocalChecks is the agent's own check of the services it serves: the directors' own
// checkers, run on this host against its own address, their verdicts published in the
// agent's gossip metadata. A "down" here takes the real server out even if the directors
// can still connect (the application knows it is unwell); an "up" leaves the decision to
// the directors, who also prove the path from them to here.
type LocalChecks struct {
	addr  netip.Addr
	check *fsm.HealthCheck
	specs []ServiceSpec
	sched *healthd.Scheduler
	pub   healthPublisher
	log   *slog.Logger
}

// healthPublisher announces the agent's verdicts (PoolMembership).
type healthPublisher interface {
	SetHealth(verdicts map[string]gossip.ServicePort) error
}

// NewLocalChecks prepares check for every service of cfg; nothing runs before Run.
func NewLocalChecks(cfg Config, check *fsm.HealthCheck, pub healthPublisher, execDir string) (*LocalChecks, error) {
	if err := fsm.ValidateHealthCheck("check", check); err != nil {
		return nil, fmt.Errorf("agent check: %w: %w", err, ErrBadSpec)
	}
	sched, err := healthd.NewScheduler(healthd.SchedulerConfig{
		Logger:   cfg.Logger.With("component", "health"),
		Checkers: healthd.CheckerConfig{ExecPolicy: healthd.ExecPolicy{Dir: execDir}},
	})
	if err != nil {
		return nil, fmt.Errorf("agent check: %w", err)
	}
	return &LocalChecks{addr: cfg.Addr.Unmap(), check: check, specs: cfg.Services, sched: sched, pub: pub, log: cfg.Logger}, nil
}

// SetServices gives the checks the services as the cluster knows them (for their ports).
func (l *LocalChecks) SetServices(known map[string]fsm.Service) {
	var targets []healthd.Target
	for _, spec := range l.specs {
		svc, ok := known[spec.Name]
		if !ok {
			continue
		}
		port := spec.Port
		if port == 0 {
			port = svc.Port
		}
		to := port
		if l.check.Port != 0 {
			to = l.check.Port
		}
		targets = append(targets, healthd.Target{
			Key:   fsm.RSKey{Service: spec.Name, Addr: l.addr, Port: port},
			To:    netip.AddrPortFrom(l.addr, to),
			Check: l.check.Clone(),
		})
	}
	l.sched.Set(targets)
}

// Run checks until ctx ends, publishing every change of verdict.
func (l *LocalChecks) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-l.sched.Changed():
			}
			if err := l.publish(); err != nil {
				l.log.Warn("publish this agent's own check", "err", err)
			}
		}
	})
	err := l.sched.Run(ctx)
	wg.Wait()
	return err
}

func (l *LocalChecks) publish() error {
	verdicts := map[string]gossip.ServicePort{}
	for _, sv := range l.sched.View("").Servers {
		h := gossip.HealthUnknown
		switch sv.Health {
		case fsm.HealthUp:
			h = gossip.HealthUp
		case fsm.HealthDown:
			h = gossip.HealthDown
		}
		reason := sv.Reason
		if len(reason) > gossip.MaxReasonLen {
			reason = reason[:gossip.MaxReasonLen]
		}
		verdicts[sv.Service] = gossip.ServicePort{Health: h, Reason: reason}
	}
	return l.pub.SetHealth(verdicts)
}

// SetHealth announces the agent's own verdict on each service it names (Health and
// Reason of each entry). Too many services for their reasons to fit in the metadata:
// the verdicts go without reasons.
func (p *PoolMembership) SetHealth(verdicts map[string]gossip.ServicePort) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.meta
	m.Services = append([]gossip.ServicePort(nil), p.meta.Services...)
	for i, s := range m.Services {
		if v, ok := verdicts[s.Service]; ok {
			m.Services[i].Health, m.Services[i].Reason = v.Health, v.Reason
		}
	}
	err := p.pool.UpdateMeta(m, metaTimeout)
	if errors.Is(err, gossip.ErrMetaTooLarge) {
		for i := range m.Services {
			m.Services[i].Reason = ""
		}
		err = p.pool.UpdateMeta(m, metaTimeout)
	}
	if err != nil {
		return fmt.Errorf("announce this agent's own check: %w", err)
	}
	p.meta = m
	return nil
}
