package chaos

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// FaultKind names what the nemesis does; the names are what the logs say.
type FaultKind string

const (
	KillLeader    FaultKind = "kill-leader"    // the leader's machine fails: cable pulled, kill -9; rebooted after the hold
	KillFollower  FaultKind = "kill-follower"  // kill -9 of a follower's process; started again after the hold
	Restart       FaultKind = "restart"        // SIGTERM (a planned stop) of any director, then started again
	IsolateLeader FaultKind = "isolate-leader" // the leader loses every packet to and from the other directors (clients still reach it)
	Split         FaultKind = "split"          // a minority of directors cut off from the majority
	OneWay        FaultKind = "one-way"        // packets from one director to another are lost, the other way not
	Freeze        FaultKind = "freeze"         // SIGSTOP for longer than the lease (the leader mostly), then SIGCONT
	DiskFull      FaultKind = "disk-full"      // the disk victim's data dir filled up (its tmpfs), freed after the hold
)

// AllFaults is every kind, in the order the report lists them.
var AllFaults = []FaultKind{KillLeader, KillFollower, Restart, IsolateLeader, Split, OneWay, Freeze, DiskFull}

// Plan is what a run's nemesis does: which faults, how often each, how long each is
// held, the pause after each, and for how long.
type Plan struct {
	Weights  map[FaultKind]int
	Hold     [2]time.Duration // a fault is held for a time drawn in [Hold[0], Hold[1])
	Pause    [2]time.Duration // quiet time after the cluster recovered from one
	Duration time.Duration    // faults stop once this has passed …
	// … and at least this many leaders were killed, and every kind ran at least
	// MinEach times (a long run), but never past MaxDuration.
	MinLeaderKills int
	MinEach        int
	MaxDuration    time.Duration
}

// Fault is one fault as the nemesis did it.
type Fault struct {
	N        int
	Kind     FaultKind
	Targets  []string
	From, To time.Duration // applied, healed (the run's clock)
	Note     string
	// Recovered is how long after the heal every running director served again under
	// one leader; Stuck says it did not within the bound.
	Recovered time.Duration
	Stuck     bool
	Skipped   string // why nothing was done (no leader to kill, say)
}

func (f Fault) String() string {
	s := fmt.Sprintf("fault %d %s %s", f.N, f.Kind, strings.Join(f.Targets, ","))
	if f.Note != "" {
		s += " (" + f.Note + ")"
	}
	return s
}

// schedule draws a plan's faults from one seeded source, so that a seed replays the
// same sequence of kinds, holds, pauses and target choices.
type schedule struct {
	plan  Plan
	rng   *rand.Rand
	kinds []FaultKind // in AllFaults order, those with a weight
	total int
}

func newSchedule(p Plan, seed uint64) *schedule {
	s := &schedule{plan: p, rng: rand.New(rand.NewPCG(seed, 0x6e656d65))}
	for _, k := range AllFaults {
		if w := p.Weights[k]; w > 0 {
			s.kinds = append(s.kinds, k)
			s.total += w
		}
	}
	return s
}

// next draws the next kind; until a long run's minimums are met, the kinds behind them
// come first.
func (s *schedule) next(counts map[FaultKind]int) FaultKind {
	var behind []FaultKind
	for _, k := range s.kinds {
		if counts[k] < s.plan.MinEach {
			behind = append(behind, k)
		}
	}
	if len(behind) > 0 && s.rng.IntN(2) == 0 {
		return behind[s.rng.IntN(len(behind))]
	}
	n := s.rng.IntN(s.total)
	for _, k := range s.kinds {
		if n -= s.plan.Weights[k]; n < 0 {
			return k
		}
	}
	return s.kinds[len(s.kinds)-1]
}

func (s *schedule) within(r [2]time.Duration) time.Duration {
	if r[1] <= r[0] {
		return r[0]
	}
	return r[0] + time.Duration(s.rng.Int64N(int64(r[1]-r[0])))
}

// pick chooses one of the candidates (sorted first, so that the choice depends on the
// seed only), "" when there is none.
func (s *schedule) pick(candidates []string) string {
	if len(candidates) == 0 {
		return ""
	}
	c := slices.Sorted(slices.Values(candidates))
	return c[s.rng.IntN(len(c))]
}

// done says whether the faults may stop.
func (s *schedule) done(elapsed time.Duration, counts map[FaultKind]int) bool {
	if elapsed >= s.plan.MaxDuration && s.plan.MaxDuration > 0 {
		return true
	}
	if elapsed < s.plan.Duration || counts[KillLeader] < s.plan.MinLeaderKills {
		return false
	}
	for _, k := range s.kinds {
		if counts[k] < s.plan.MinEach {
			return false
		}
	}
	return true
}
