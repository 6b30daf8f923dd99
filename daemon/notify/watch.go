package notify

import (
	"fmt"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// Observation is what a director knows of its role at one moment.
type Observation struct {
	At      time.Time
	Leading bool   // its leader duties run
	Serving bool   // it leads, or follows a leader it heard from lately, and has caught up
	Leader  string // the leader it knows of, if any
}

// RoleTracker turns observations into role changes: leader while the leader duties run,
// follower while in touch with a leader, fault once neither has held for faultAfter (an
// election takes less: a leader that crashed gives follower, leader, never fault, if the
// others elect a new one in time). Before its first role a director is starting (joining,
// catching up), not faulty: it reports fault only after startupGrace. It is a state
// machine a test steps through; the daemon feeds it. Not safe for concurrent use.
type RoleTracker struct {
	director     string
	faultAfter   time.Duration
	startupGrace time.Duration
	role         Kind      // "" until the first role
	lost         time.Time // when it last was neither leader nor in touch; zero while it is
}

// NewRoleTracker starts a tracker at start, with no role yet: a director that never
// finds a leader reports fault after startupGrace (at least faultAfter).
func NewRoleTracker(director string, faultAfter, startupGrace time.Duration, start time.Time) *RoleTracker {
	return &RoleTracker{director: director, faultAfter: faultAfter, startupGrace: max(startupGrace, faultAfter), lost: start}
}

// Role is the last role reported ("" before the first).
func (t *RoleTracker) Role() Kind { return t.role }

// Observe returns the event of the role change o makes, if it makes one.
func (t *RoleTracker) Observe(o Observation) (Event, bool) {
	var next Kind
	reason := ""
	switch {
	case o.Leading:
		next, t.lost = Leader, time.Time{}
	case o.Serving:
		next, t.lost = Follower, time.Time{}
	default:
		if t.lost.IsZero() {
			t.lost = o.At
		}
		gone := o.At.Sub(t.lost)
		if gone < t.faultAfter || t.role == "" && gone < t.startupGrace {
			return Event{}, false
		}
		next = Fault
		if o.Leader != "" {
			reason = fmt.Sprintf("no word from the leader %s for %v", o.Leader, gone.Round(100*time.Millisecond))
		} else {
			reason = fmt.Sprintf("no leader for %v (no quorum, or cut off from it)", gone.Round(100*time.Millisecond))
		}
	}
	if next == t.role {
		return Event{}, false
	}
	t.role = next
	return Event{Kind: next, Director: t.director, Leader: o.Leader, Role: next, Reason: reason, At: o.At}, true
}

// HealthEvent is the health event of a committed transition of rs from from, as the
// state's watcher (events.StateWatcher) saw it: one to up or down, from whatever it was.
// The watcher's first look sets the baseline and a real server seen for the first time
// its own (keepalived, likewise, does not notify the initial state).
func HealthEvent(rs *fsm.RealServer, from fsm.Health, at time.Time) (Event, bool) {
	if rs.Health != fsm.HealthUp && rs.Health != fsm.HealthDown {
		return Event{}, false
	}
	return Event{
		Kind: Health, Service: rs.Service, Addr: rs.Addr, Port: rs.Port,
		Health: rs.Health, Previous: from, Reason: rs.HealthReason, At: at,
	}, true
}
