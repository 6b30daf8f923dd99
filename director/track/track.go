// Package track runs a director's tracked checks (keepalived's track_script): local
// checks of what the VIPs front on this machine (the proxy process, its health page). A
// director whose checks fail does not hold the VIPs: as leader it hands leadership to an
// eligible director, and it announces itself ineligible so that no planned transfer picks
// it. hashicorp/raft has no voter that cannot lead, so an election may still make it
// leader after a crash; its duty then refuses, before the VIPs, and hands over again.
// DESIGN.md in this directory has the reasoning.
package track

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Defaults, keepalived's for track_script: a run a second, one failure to fail, one
// success to pass again.
const (
	DefaultInterval = time.Second
	DefaultTimeout  = time.Second
	DefaultRise     = 1
	DefaultFall     = 1
)

// Config is one director's tracked checks.
type Config struct {
	Checks   []Check
	Interval time.Duration // between runs; 0 is DefaultInterval
	Rise     int           // passing runs in a row to pass again; 0 is DefaultRise
	Fall     int           // failing runs in a row to fail; 0 is DefaultFall
	// OnChange, if set, hears every change of verdict (and the first), from the
	// tracker's goroutine: the daemon announces it in the gossip metadata.
	OnChange func(passing bool, reason string)
	Logger   *slog.Logger
}

// Tracker holds the verdict of a director's tracked checks. A run passes when every
// check passes.
type Tracker struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	known   bool // a first run has finished
	passing bool
	reason  string
	streak  int           // runs in a row that disagree with the verdict
	changed chan struct{} // closed and replaced when the verdict changes
}

// ErrNoChecks: a tracker needs at least one check.
var ErrNoChecks = errors.New("no tracked checks")

// New returns a tracker; Run runs its checks.
func New(cfg Config) (*Tracker, error) {
	if len(cfg.Checks) == 0 {
		return nil, ErrNoChecks
	}
	cfg.Interval = cmp.Or(cfg.Interval, DefaultInterval)
	cfg.Rise = cmp.Or(cfg.Rise, DefaultRise)
	cfg.Fall = cmp.Or(cfg.Fall, DefaultFall)
	log := cmp.Or(cfg.Logger, slog.Default())
	return &Tracker{cfg: cfg, log: log.With("part", "tracked checks"), changed: make(chan struct{})}, nil
}

// Run runs the checks every Interval until ctx ends.
func (t *Tracker) Run(ctx context.Context) {
	tick := time.NewTicker(t.cfg.Interval)
	defer tick.Stop()
	for {
		passing, reason := t.runOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		t.record(passing, reason)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// runOnce runs every check at once and passes if all pass.
func (t *Tracker) runOnce(ctx context.Context) (bool, string) {
	reasons := make([]string, len(t.cfg.Checks))
	var wg sync.WaitGroup
	for i, c := range t.cfg.Checks {
		wg.Go(func() {
			if r := c.checker.Check(ctx, c.target); !r.Up {
				reasons[i] = c.Spec + ": " + r.Reason
			}
		})
	}
	wg.Wait()
	var failed []string
	for _, r := range reasons {
		if r != "" {
			failed = append(failed, r)
		}
	}
	if len(failed) > 0 {
		return false, strings.Join(failed, "; ")
	}
	return true, "all tracked checks pass"
}

// record folds one run into the verdict: the first run decides; then Fall failing runs
// in a row fail it and Rise passing ones pass it again.
func (t *Tracker) record(passing bool, reason string) {
	t.mu.Lock()
	changed := false
	switch {
	case !t.known:
		t.known, t.passing, t.reason, changed = true, passing, reason, true
	case passing == t.passing:
		t.streak, t.reason = 0, reason
	default:
		t.streak++
		need := t.cfg.Fall
		if passing {
			need = t.cfg.Rise
		}
		if t.streak >= need {
			t.passing, t.reason, t.streak, changed = passing, reason, 0, true
		}
	}
	if changed {
		close(t.changed)
		t.changed = make(chan struct{})
	}
	t.mu.Unlock()
	if !changed {
		return
	}
	if passing {
		t.log.Info("tracked checks pass: eligible to hold the VIPs", "reason", reason)
	} else {
		t.log.Warn("tracked checks fail: not eligible to hold the VIPs", "reason", reason)
	}
	if t.cfg.OnChange != nil {
		t.cfg.OnChange(passing, reason)
	}
}

// Verdict reports whether the checks pass (false until a first run has finished, when
// known is false too), why, and a channel closed at the next change.
func (t *Tracker) Verdict() (passing, known bool, reason string, changed <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.known && t.passing, t.known, t.reason, t.changed
}
