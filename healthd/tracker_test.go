package healthd

import (
	"strings"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func pass() Result { return Result{Up: true, Reason: "HTTP 200"} }
func fail() Result { return down(ErrStatus, nil, "HTTP 503") }

// letter is a health as the tables write it.
func letter(h fsm.Health) string {
	switch h {
	case fsm.HealthUp:
		return "U"
	case fsm.HealthDown:
		return "D"
	}
	return "?"
}

func TestTrackerRiseFallAndStartState(t *testing.T) {
	tests := []struct {
		name    string
		spec    fsm.HealthCheck
		start   fsm.Health
		results string // + a success, - a failure, one a second
		want    string // the verdict before any result, then after each
	}{
		{"unknown comes up at its first success", fsm.HealthCheck{}, fsm.HealthUnknown, "+", "?U"},
		{"unknown stays in rotation until fall failures", fsm.HealthCheck{}, fsm.HealthUnknown, "--+---", "???UUUD"},
		{"up goes down after fall failures in a row", fsm.HealthCheck{}, fsm.HealthUp, "--+---", "UUUUUUD"},
		{"down comes up after rise successes in a row", fsm.HealthCheck{}, fsm.HealthDown, "+-++", "DDDDU"},
		{"rise and fall are the spec's", fsm.HealthCheck{Rise: 3, Fall: 1}, fsm.HealthUp, "-++++", "UDDDUU"},
		{"legacy retries are read as fall", fsm.HealthCheck{Retries: 2}, fsm.HealthUp, "--", "UUD"},
		{"start_down is down until the first success", fsm.HealthCheck{StartDown: true, Rise: 3}, fsm.HealthUnknown, "--+", "DDDU"},
		{"start_down yields to a committed up", fsm.HealthCheck{StartDown: true}, fsm.HealthUp, "+-", "UUU"},
		{"start_down after a real down needs rise successes", fsm.HealthCheck{StartDown: true, Rise: 2, Fall: 1}, fsm.HealthUnknown, "+-++", "DUDDU"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTracker(&tt.spec, tt.start, Damping{Off: true}, t0)
			got := letter(tr.Verdict().Health)
			for i, c := range tt.results {
				r := pass()
				if c == '-' {
					r = fail()
				}
				tr.Observe(r, t0.Add(time.Duration(i+1)*time.Second))
				got += letter(tr.Verdict().Health)
			}
			if got != tt.want {
				t.Errorf("verdicts %s, want %s", got, tt.want)
			}
		})
	}
}

func TestTrackerReportsEachTransitionOnce(t *testing.T) {
	tr := NewTracker(&fsm.HealthCheck{Rise: 1, Fall: 2}, fsm.HealthUp, Damping{Off: true}, t0)
	var changes []Change
	for i, r := range []Result{fail(), fail(), fail(), pass(), pass()} {
		if c, ok := tr.Observe(r, t0.Add(time.Duration(i)*time.Second)); ok {
			changes = append(changes, c)
		}
	}
	want := []Change{
		{From: fsm.HealthUp, To: fsm.HealthDown, Reason: "HTTP 503", At: t0.Add(time.Second)},
		{From: fsm.HealthDown, To: fsm.HealthUp, Reason: "HTTP 200", At: t0.Add(3 * time.Second)},
	}
	if len(changes) != len(want) {
		t.Fatalf("changes %+v, want %+v", changes, want)
	}
	for i := range want {
		if changes[i] != want[i] {
			t.Errorf("change %d = %+v, want %+v", i, changes[i], want[i])
		}
	}
	if v := tr.Verdict(); v.Since != t0.Add(3*time.Second) || v.Reason != "HTTP 200" {
		t.Errorf("verdict %+v, want up since the last change with its reason", v)
	}
}

// flapper steps a tracker with rise 1 and fall 1, so each result can flip it.
type flapper struct {
	t       *testing.T
	tr      *Tracker
	changes []Change
}

func newFlapper(t *testing.T, d Damping) *flapper {
	return &flapper{t: t, tr: NewTracker(&fsm.HealthCheck{Rise: 1, Fall: 1}, fsm.HealthUp, d, t0)}
}

func (f *flapper) at(offset time.Duration, r Result) {
	if c, ok := f.tr.Observe(r, t0.Add(offset)); ok {
		f.changes = append(f.changes, c)
	}
}

// bounce takes the server down then up n times, a second apart, from offset.
func (f *flapper) bounce(offset time.Duration, n int) time.Duration {
	for range n {
		f.at(offset, fail())
		f.at(offset+time.Second, pass())
		offset += 2 * time.Second
	}
	return offset
}

func TestDampingHoldsAFlappingServerDownAndReleasesItOnce(t *testing.T) {
	f := newFlapper(t, Damping{})
	end := f.bounce(0, 3) // penalties 1000, ~1977, ~2932: the third down starts a hold
	if n := len(f.changes); n != 5 {
		t.Fatalf("%d changes, want down, up, down, up, down (held): %+v", n, f.changes)
	}
	held := f.changes[4]
	if !held.Held || held.To != fsm.HealthDown || !strings.Contains(held.Reason, "flapping: held down for at least") {
		t.Errorf("the third down = %+v, want it to start a hold and say so", held)
	}
	if v := f.tr.Verdict(); v.Health != fsm.HealthDown || !strings.Contains(v.Reason, "checks pass (HTTP 200), held down for flapping") {
		t.Errorf("while held and passing, verdict %+v, want down saying it is held", v)
	}

	// Bounces during the hold say nothing (and add to the penalty, as in BGP).
	end = f.bounce(end, 2)
	if n := len(f.changes); n != 5 {
		t.Fatalf("bounces while held changed the verdict: %+v", f.changes[5:])
	}
	release := f.tr.Status(t0.Add(end)).HeldUntil
	if release.Sub(t0) < end {
		t.Fatalf("held until %v, before the last bounce at %v", release.Sub(t0), end)
	}

	// Passing checks just before the release keep it down; the first after it brings it up.
	f.at(release.Sub(t0)-time.Second, pass())
	if n := len(f.changes); n != 5 {
		t.Fatalf("released before the penalty decayed: %+v", f.changes[5:])
	}
	f.at(release.Sub(t0)+time.Second, pass())
	if n := len(f.changes); n != 6 {
		t.Fatalf("not released after the penalty decayed: %d changes", n)
	}
	if up := f.changes[5]; !up.Released || up.To != fsm.HealthUp || up.Reason != "HTTP 200 (flap damping over)" {
		t.Errorf("release = %+v, want one up that ends the hold", up)
	}
}

func TestDampingReleasesIntoDownIfTheChecksStillFail(t *testing.T) {
	f := newFlapper(t, Damping{})
	end := f.bounce(0, 3)
	f.at(end, fail())
	release := f.tr.Status(t0.Add(end)).HeldUntil
	f.at(release.Sub(t0)+time.Second, fail())
	if st := f.tr.Status(release.Add(time.Second)); st.Held || st.Health != fsm.HealthDown {
		t.Errorf("after the hold with failing checks: %+v, want down, not held", st)
	}
	if n := len(f.changes); n != 5 {
		t.Errorf("the silent end of a hold on a down server made changes: %+v", f.changes[5:])
	}
}

func TestDampingNeverHoldsAServerThatFailsOnceAMinute(t *testing.T) {
	f := newFlapper(t, Damping{})
	for i := range 30 {
		offset := time.Duration(i) * time.Minute
		f.at(offset, fail())
		f.at(offset+10*time.Second, pass())
	}
	for _, c := range f.changes {
		if c.Held {
			t.Fatalf("held at %v: a down every half-life keeps the penalty under 2 × 1000", c.At.Sub(t0))
		}
	}
	if n := len(f.changes); n != 60 {
		t.Errorf("%d changes, want every down and up of 30 flaps", n)
	}
}

func TestDampingHoldIsBoundedByMaxHold(t *testing.T) {
	f := newFlapper(t, Damping{})
	end := f.bounce(0, 50)
	st := f.tr.Status(t0.Add(end))
	if !st.Held {
		t.Fatal("50 flaps in 100 s are not held")
	}
	last := t0.Add(end - 2*time.Second) // the last down
	if hold := st.HeldUntil.Sub(last); hold > DefaultDamping.MaxHold+time.Second {
		t.Errorf("held %v after the last flap, want at most MaxHold %v", hold, DefaultDamping.MaxHold)
	}
}

func TestDampingOffNeverHolds(t *testing.T) {
	f := newFlapper(t, Damping{Off: true})
	f.bounce(0, 20)
	if n := len(f.changes); n != 40 {
		t.Errorf("%d changes, want all 40 transitions of 20 flaps", n)
	}
}

func TestDampingValidate(t *testing.T) {
	tests := []struct {
		name string
		d    Damping
		ok   bool
	}{
		{"the defaults", Damping{}, true},
		{"off", Damping{Off: true, Reuse: 5000}, true},
		{"reuse at or above suppress never releases", Damping{Suppress: 1000, Reuse: 1000}, false},
		{"a max hold too short to reach suppress", Damping{MaxHold: time.Second}, false},
		{"negative values", Damping{Penalty: -1}, false},
	}
	for _, tt := range tests {
		if err := tt.d.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}

func TestTrackerReconfigureKeepsVerdictAndPenalty(t *testing.T) {
	tr := NewTracker(&fsm.HealthCheck{Fall: 5}, fsm.HealthUp, Damping{}, t0)
	for i := range 3 {
		tr.Observe(fail(), t0.Add(time.Duration(i)*time.Second))
	}
	tr.Reconfigure(&fsm.HealthCheck{Fall: 2})
	if c, ok := tr.Observe(fail(), t0.Add(3*time.Second)); !ok || c.To != fsm.HealthDown {
		t.Fatalf("4 failures with fall lowered to 2: change %+v %v, want down", c, ok)
	}
	if p := tr.Status(t0.Add(3 * time.Second)).Penalty; p != DefaultDamping.Penalty {
		t.Errorf("penalty %v, want one flap's %v", p, DefaultDamping.Penalty)
	}
}
