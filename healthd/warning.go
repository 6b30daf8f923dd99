package healthd

import (
	"log/slog"
	"slices"

	"github.com/raftlvs/raftlvs/fsm"
)

// WarningKind names what a warning is about.
type WarningKind string

const (
	// WarnLoneDirector: one director alone sees many real servers down.
	WarnLoneDirector WarningKind = "lone_director"
	// WarnFailOpen: a service's downs were held to keep its last good set.
	WarnFailOpen WarningKind = "fail_open"
)

// Warning is something the leader should tell the operator about a decision.
type Warning struct {
	Kind     WarningKind `json:"kind"`
	Director string      `json:"director,omitempty"` // lone_director
	Service  string      `json:"service,omitempty"`  // fail_open
	Servers  []fsm.RSKey `json:"servers"`
	Message  string      `json:"message"`
}

// subject identifies a warning across decisions: the same condition, round after round.
func (w Warning) subject() string { return string(w.Kind) + "\x00" + w.Director + "\x00" + w.Service }

// WarningLog logs a decision's warnings as conditions, not as events: once when one
// appears or its servers change, once when it clears. The leader aggregates every second
// or so; the same warning each time would be noise (keepalived #677, #1910).
type WarningLog struct {
	log    *slog.Logger
	active map[string]Warning
}

// NewWarningLog returns a WarningLog that logs to log.
func NewWarningLog(log *slog.Logger) *WarningLog {
	return &WarningLog{log: log, active: map[string]Warning{}}
}

// Report logs what changed since the last decision's warnings. Not safe for concurrent use:
// the leader's loop owns it.
func (l *WarningLog) Report(ws []Warning) {
	seen := map[string]bool{}
	for _, w := range ws {
		k := w.subject()
		seen[k] = true
		if old, ok := l.active[k]; ok && slices.Equal(old.Servers, w.Servers) {
			continue
		}
		l.active[k] = w
		l.log.Warn(w.Message, "kind", w.Kind, "director", w.Director, "service", w.Service, "servers", len(w.Servers))
	}
	for k, w := range l.active {
		if !seen[k] {
			delete(l.active, k)
			l.log.Info("health warning cleared", "kind", w.Kind, "director", w.Director, "service", w.Service)
		}
	}
}
