package api

import (
	"context"
	"net/http"
	"net/netip"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// HealthReport is one director's verdicts on the real servers it checks, as it sends them
// to the leader (POST /v1/health/views, from director to director).
type HealthReport struct {
	Director string `json:"director"`
	// At is when the view was taken; the leader keeps, instead, when it arrived.
	At      time.Time       `json:"at"`
	Servers []HealthVerdict `json:"servers"`
}

// HealthVerdict is one director's (or agent's) word on one real server.
type HealthVerdict struct {
	Key    fsm.RSKey  `json:"key"`
	Health fsm.Health `json:"health"` // unknown: no word yet
	Reason string     `json:"reason,omitempty"`
	Since  time.Time  `json:"since,omitzero"`
	// Weight is an exec check's dynamic weight (keepalived's misc_dynamic), if any.
	Weight *int `json:"weight,omitempty"`
}

// HealthViews is what the leader decides from (GET /v1/health/views, answered by the
// leader): each director's latest view, stamped with when it arrived, the agents' own
// verdicts, and the warnings of its last decision.
type HealthViews struct {
	Leader   string          `json:"leader"`
	At       time.Time       `json:"at"` // the leader's clock when it answered
	Views    []HealthReport  `json:"views"`
	Agents   []HealthVerdict `json:"agents,omitempty"`
	Warnings []HealthWarning `json:"warnings,omitempty"`
}

// HealthWarning is a decision the leader held back, and why (a lone director, fail-open).
type HealthWarning struct {
	Kind     string      `json:"kind"`
	Director string      `json:"director,omitempty"`
	Service  string      `json:"service,omitempty"`
	Servers  []fsm.RSKey `json:"servers"`
	Message  string      `json:"message"`
}

// HealthChecks is the answering director's own checks (GET /v1/health): a checker that
// stopped shows as a last run far behind its next, or a run in progress for too long.
type HealthChecks struct {
	Director string        `json:"director"`
	At       time.Time     `json:"at"`
	Stats    HealthStats   `json:"stats"`
	Probes   []HealthProbe `json:"probes"`
}

// HealthStats are a director's check counters.
type HealthStats struct {
	Probes   int    `json:"probes"`
	Servers  int    `json:"servers"`
	Queued   int    `json:"queued"`
	Running  int    `json:"running"`
	Runs     uint64 `json:"runs"`
	Overruns uint64 `json:"overruns"`
	Behind   uint64 `json:"behind"`
}

// HealthProbe is one probe of a director: one check of one address, which may decide for
// several real servers (identical checks run once).
type HealthProbe struct {
	To           netip.AddrPort `json:"to"`
	Type         fsm.CheckType  `json:"type"`
	IntervalMS   int64          `json:"interval_ms"`
	TimeoutMS    int64          `json:"timeout_ms"`
	Servers      []fsm.RSKey    `json:"servers"`
	RunningSince time.Time      `json:"running_since,omitzero"`
	LastRun      time.Time      `json:"last_run,omitzero"`
	NextRun      time.Time      `json:"next_run"`
	Up           bool           `json:"up"`
	Reason       string         `json:"reason,omitempty"`
	LatencyMS    float64        `json:"latency_ms"`
	Successes    int            `json:"successes"`
	Failures     int            `json:"failures"`
	Stuck        bool           `json:"stuck,omitempty"`
}

// ReportHealth sends a director's view to the leader (a director at Addrs forwards it).
func (c *Client) ReportHealth(ctx context.Context, r HealthReport) error {
	return c.do(ctx, http.MethodPost, "/v1/health/views", r, nil)
}

// HealthViews asks the leader what it decides health from.
func (c *Client) HealthViews(ctx context.Context) (*HealthViews, error) {
	return call[HealthViews](ownData(ctx), c, http.MethodGet, "/v1/health/views", nil)
}

// HealthChecks asks the director at Addrs for its own checks.
func (c *Client) HealthChecks(ctx context.Context) (*HealthChecks, error) {
	return call[HealthChecks](ownData(ctx), c, http.MethodGet, "/v1/health", nil)
}
