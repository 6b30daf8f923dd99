package healthd

import (
	"fmt"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// Verdict is one director's word on one real server.
type Verdict struct {
	Health fsm.Health `json:"health"` // unknown: no word yet (the server stays in rotation)
	Reason string     `json:"reason,omitempty"`
	Since  time.Time  `json:"since,omitzero"` // when Health last changed
	// Weight is the last dynamic weight an exec check reported (HasWeight).
	Weight    int  `json:"weight,omitempty"`
	HasWeight bool `json:"has_weight,omitempty"`
}

// Change is a transition of a tracker's verdict.
type Change struct {
	From, To fsm.Health
	Reason   string
	At       time.Time
	Held     bool // this down starts a flap-damping hold
	Released bool // this up ends one
}

// Tracker turns one real server's check results into a verdict: fall failures in a row
// take it down, rise successes bring it back, and flap damping holds down a server that
// keeps bouncing. It is a pure state machine, stepped by Observe with the time of each
// result (Seesaw's runOnce style): no clock, no goroutine, no lock.
type Tracker struct {
	rise, fall int
	damping    Damping
	raw        fsm.Health // what rise and fall alone say
	firstUp    bool       // start_down: the first success brings it up, not rise of them
	verdict    Verdict
	successes  int // in a row
	failures   int // in a row
	pen        penalty
	held       bool
}

// NewTracker starts a tracker for a real server whose committed health is start (the
// state's, so that a director that restarts votes for what is, not for a guess):
//   - down stays down until rise successes;
//   - up stays up until fall failures;
//   - unknown, with start_down, is down until the first success (keepalived's alpha);
//     without it, the server stays unknown, in rotation, until a first result says up or
//     fall failures say down.
func NewTracker(spec *fsm.HealthCheck, start fsm.Health, d Damping, now time.Time) *Tracker {
	t := &Tracker{damping: d.withDefaults()}
	t.Reconfigure(spec)
	t.damping.Off = d.Off
	switch {
	case start == fsm.HealthDown:
		t.raw = fsm.HealthDown
		t.verdict = Verdict{Health: fsm.HealthDown, Reason: "down as last committed", Since: now}
	case start == fsm.HealthUp:
		t.raw = fsm.HealthUp
		t.verdict = Verdict{Health: fsm.HealthUp, Reason: "up as last committed", Since: now}
	case spec != nil && spec.StartDown:
		t.raw, t.firstUp = fsm.HealthDown, true
		t.verdict = Verdict{Health: fsm.HealthDown, Reason: "waiting for the first successful check (start_down)", Since: now}
	default:
		t.raw = fsm.HealthUnknown
		t.verdict = Verdict{Health: fsm.HealthUnknown, Reason: "not checked yet", Since: now}
	}
	return t
}

// Reconfigure takes a changed spec's rise and fall; the verdict, the counts in a row and
// the flap penalty stay.
func (t *Tracker) Reconfigure(spec *fsm.HealthCheck) {
	t.rise, t.fall = fsm.DefaultCheckRise, fsm.DefaultCheckFall
	if spec != nil {
		t.rise, t.fall = spec.RiseCount(), spec.FallCount()
	}
}

// Verdict is the tracker's current word.
func (t *Tracker) Verdict() Verdict { return t.verdict }

// Observe steps the tracker with one result, taken at now, and reports a change of its
// verdict. While a server is held down, its bounces change nothing and say nothing: the
// hold's start and its end are the only changes.
func (t *Tracker) Observe(r Result, now time.Time) (Change, bool) {
	if r.Up {
		t.successes, t.failures = t.successes+1, 0
	} else {
		t.failures, t.successes = t.failures+1, 0
	}
	if r.HasWeight {
		t.verdict.Weight, t.verdict.HasWeight = r.Weight, true
	}
	flapped := false
	switch {
	case t.raw != fsm.HealthDown && !r.Up && t.failures >= t.fall:
		flapped = t.raw == fsm.HealthUp // a server never seen up has not flapped
		t.raw = fsm.HealthDown
	case t.raw == fsm.HealthUnknown && r.Up:
		t.raw = fsm.HealthUp
	case t.raw == fsm.HealthDown && r.Up && (t.successes >= t.rise || t.firstUp):
		t.raw, t.firstUp = fsm.HealthUp, false
	}

	startHold, endHold := t.damp(flapped, now)
	want := t.raw
	if t.held {
		want = fsm.HealthDown
	}
	reason := r.Reason
	if t.held {
		more := t.pen.releaseAt(t.damping).Sub(now).Round(time.Second)
		if r.Up {
			reason = fmt.Sprintf("checks pass (%s), held down for flapping for about %v more", r.Reason, more)
		} else {
			reason = fmt.Sprintf("%s; flapping: held down for at least %v", r.Reason, more)
		}
	} else if endHold {
		reason = r.Reason + " (flap damping over)"
	}

	if want == t.verdict.Health {
		// The same verdict: keep its reason current with a result that agrees with it,
		// or with the hold's.
		if t.held || (want == fsm.HealthDown) != r.Up {
			t.verdict.Reason = reason
		}
		return Change{}, false
	}
	c := Change{From: t.verdict.Health, To: want, Reason: reason, At: now, Held: startHold && want == fsm.HealthDown, Released: endHold}
	t.verdict.Health, t.verdict.Reason, t.verdict.Since = want, reason, now
	return c, true
}

// damp ages the flap penalty to now, adds a flap, and starts or ends a hold.
func (t *Tracker) damp(flapped bool, now time.Time) (startHold, endHold bool) {
	d := t.damping
	if d.Off {
		return false, false
	}
	p := t.pen.now(d, now)
	if flapped {
		p = min(p+d.Penalty, d.ceiling())
	}
	t.pen = penalty{value: p, at: now}
	switch {
	case !t.held && p > d.Suppress:
		t.held = true
		return true, false
	case t.held && p < d.Reuse:
		t.held = false
		return false, true
	}
	return false, false
}

// TrackerStatus is a tracker's state for an operator.
type TrackerStatus struct {
	Verdict
	Successes int       `json:"successes"` // in a row
	Failures  int       `json:"failures"`  // in a row
	Penalty   float64   `json:"penalty"`   // the flap penalty, decayed to now
	Held      bool      `json:"held"`      // held down by flap damping
	HeldUntil time.Time `json:"held_until,omitzero"`
}

// Status reads the tracker as of now.
func (t *Tracker) Status(now time.Time) TrackerStatus {
	s := TrackerStatus{Verdict: t.verdict, Successes: t.successes, Failures: t.failures, Held: t.held}
	if !t.damping.Off {
		s.Penalty = t.pen.now(t.damping, now)
		if t.held {
			s.HeldUntil = t.pen.releaseAt(t.damping)
		}
	}
	return s
}
