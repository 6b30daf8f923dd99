package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/cluster"
	"github.com/raftlvs/raftlvs/cluster/apiserver"
	"github.com/raftlvs/raftlvs/cluster/gossip"
	"github.com/raftlvs/raftlvs/fsm"
	"github.com/raftlvs/raftlvs/healthd"
)

// health is a full director's health checks: every director checks (a new leader starts
// warm, and no single vantage point decides), sends its verdicts to the leader, and the
// leader's duty commits the transitions a majority agrees on.
type health struct {
	self   string
	node   *cluster.Node
	client func(addrs ...string) *api.Client // to the leader's API, as a director
	sched  *healthd.Scheduler
	leader *healthd.Leader
	log    *slog.Logger
}

func newHealth(opts Options, node *cluster.Node, client func(...string) *api.Client, agents func() []healthd.AgentVerdict) (*health, error) {
	sched, err := healthd.NewScheduler(healthd.SchedulerConfig{
		Logger:   opts.Logger.With("component", "health"),
		Checkers: healthd.CheckerConfig{ExecPolicy: healthd.ExecPolicy{Dir: opts.ExecCheckDir}, Dial: opts.HealthDial},
	})
	if err != nil {
		return nil, fmt.Errorf("health checks: %w", err)
	}
	h := &health{self: opts.ID, node: node, client: client, sched: sched, log: opts.Logger}
	h.leader = healthd.NewLeader(healthd.LeaderConfig{
		Self: opts.ID, State: node, Apply: node.Apply, Agents: agents, Logger: opts.Logger,
	})
	return h, nil
}

// duty is the leader's part.
func (h *health) duty() cluster.Duty {
	return cluster.Duty{Name: "health aggregation", Run: h.leader.Run}
}

// run checks, follows the state and reports, until ctx ends.
func (h *health) run(ctx context.Context) {
	go healthd.Follow(ctx, h.sched, h.node)
	go healthd.Report(ctx, h.sched, h.self, 0, h.send)
	if err := h.sched.Run(ctx); err != nil {
		h.log.Error("health checks stopped", "err", err)
	}
}

// send hands this director's view to the leader: its own duty on the leader, the leader's
// API otherwise.
func (h *health) send(ctx context.Context, v healthd.View) error {
	if h.node.IsLeader() {
		h.leader.Receive(v)
		return nil
	}
	addr, err := h.node.LeaderAPIAddr()
	if err != nil {
		return err
	}
	c := h.client(addr)
	c.Timeout = healthd.DefaultReportInterval
	if err := c.ReportHealth(ctx, reportOf(v)); err != nil {
		h.log.Debug("send health view to the leader", "leader", addr, "err", err)
		return err
	}
	return nil
}

func (h *health) hooks() *apiserver.HealthHooks {
	return &apiserver.HealthHooks{
		Report: func(r api.HealthReport) bool { return h.leader.Receive(viewOf(r)) },
		Views:  h.views,
		Checks: h.checks,
	}
}

func (h *health) views() api.HealthViews {
	views, last := h.leader.Views()
	out := api.HealthViews{Leader: h.self, At: time.Now(), Views: make([]api.HealthReport, 0, len(views))}
	for _, v := range views {
		out.Views = append(out.Views, reportOf(v))
	}
	for _, w := range last.Warnings {
		out.Warnings = append(out.Warnings, api.HealthWarning{Kind: string(w.Kind), Director: w.Director, Service: w.Service, Servers: w.Servers, Message: w.Message})
	}
	return out
}

func (h *health) checks() api.HealthChecks {
	st := h.sched.Status()
	now := time.Now()
	out := api.HealthChecks{Director: h.self, At: now, Stats: api.HealthStats(st.Stats), Probes: make([]api.HealthProbe, 0, len(st.Probes))}
	for _, p := range st.Probes {
		out.Probes = append(out.Probes, api.HealthProbe{
			To: p.To, Type: p.Type, IntervalMS: p.Interval.Milliseconds(), TimeoutMS: p.Timeout.Milliseconds(),
			Servers: p.Servers, RunningSince: p.RunningSince, LastRun: p.LastRun, NextRun: p.NextRun,
			Up: p.Up, Reason: p.Reason, LatencyMS: float64(p.Latency.Microseconds()) / 1000,
			Successes: p.Successes, Failures: p.Failures, Stuck: p.Stuck(now),
		})
	}
	return out
}

func reportOf(v healthd.View) api.HealthReport {
	r := api.HealthReport{Director: v.Director, At: v.At, Servers: make([]api.HealthVerdict, len(v.Servers))}
	for i, s := range v.Servers {
		r.Servers[i] = api.HealthVerdict{Key: s.RSKey, Health: s.Health, Reason: s.Reason, Since: s.Since, Weight: s.Weight}
	}
	return r
}

func viewOf(r api.HealthReport) healthd.View {
	v := healthd.View{Director: r.Director, At: r.At, Servers: make([]healthd.ServerView, len(r.Servers))}
	for i, s := range r.Servers {
		v.Servers[i] = healthd.ServerView{RSKey: s.Key, Health: s.Health, Reason: s.Reason, Since: s.Since, Weight: s.Weight}
	}
	return v
}

// agentVerdicts lists the agents' own verdicts from their gossip metadata, keyed as the
// registrar keys their real servers (a port of 0 is the service's), stamped now: the pool
// holds only current metadata, and a failed agent is the registrar's business.
func agentVerdicts(pool *gossip.Pool, node *cluster.Node) func() []healthd.AgentVerdict {
	return func() []healthd.AgentVerdict {
		now := time.Now()
		var out []healthd.AgentVerdict
		members := pool.Members()
		node.View(func(st *fsm.State) {
			for _, m := range members {
				if m.MetaErr != nil || m.Meta.Role != gossip.RoleAgent || m.State != gossip.StateAlive {
					continue
				}
				for _, sp := range m.Meta.Services {
					if sp.Health == gossip.HealthUnknown {
						continue
					}
					svc, ok := st.Service(sp.Service)
					if !ok {
						continue
					}
					rs := fsm.RealServer{Service: sp.Service, Addr: m.Meta.Addr, Port: sp.Port}
					fsm.NormalizeRealServer(&rs, &svc) // the key the registrar gave it
					h, reason := fsm.HealthUp, sp.Reason
					if sp.Health == gossip.HealthDown {
						h = fsm.HealthDown
					}
					out = append(out, healthd.AgentVerdict{
						Key:    rs.Key(),
						Health: h, Reason: m.Meta.ID + ": " + reason, At: now,
					})
				}
			}
		})
		return out
	}
}
