package chaos

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/raftlvs/raftlvs/cluster"
)

// attributionGrace: a span of double ownership or silence belongs to a fault from its
// start until this long after its heal (a thawed leader drops the VIP a moment after
// SIGCONT, a rebooted director takes a while to start).
const attributionGrace = 3 * time.Second

// Report is a run's figures.
type Report struct {
	Mode      string
	Seed      uint64
	Directors int
	Timing    string
	FaultTime time.Duration
	Tally     Tally
	Ledger    LedgerCheck
	Lin       Linearizability
	Faults    []Fault
	Counts    map[FaultKind]int
	ARP       []Round
	Converged time.Duration
	Crashes   []string
	Exits     []string
}

// blame names the kinds of the faults in force during s.
func blame(faults []Fault, s Span) []FaultKind {
	var out []FaultKind
	for _, f := range faults {
		if f.Skipped == "" && f.From <= s.To && s.From <= f.To+attributionGrace && !slices.Contains(out, f.Kind) {
			out = append(out, f.Kind)
		}
	}
	return out
}

// DoubleOwner is the longest double ownership, and the longest outside a freeze. With
// the VIP fence a frozen director's kernel stops answering within the lease
// (director/vip/DESIGN.md, Fencing), so the two should agree; they differ in a run whose
// directors have no fence (--vip-fence=off, no nf_tables), where a frozen director
// answers for the whole freeze.
func (r Report) DoubleOwner() (all, unfrozen Span, allBlame, unfrozenBlame []FaultKind) {
	for _, s := range DoubleOwners(r.ARP) {
		b := blame(r.Faults, s)
		if s.Len() > all.Len() {
			all, allBlame = s, b
		}
		if !slices.Contains(b, Freeze) && s.Len() > unfrozen.Len() {
			unfrozen, unfrozenBlame = s, b
		}
	}
	return
}

func (r Report) linearizable() string {
	switch r.Lin.Result {
	case porcupine.Ok:
		return "yes"
	case porcupine.Illegal:
		return "NO (" + r.Lin.Rendered + ")"
	}
	return "undecided (the checker's time ran out)"
}

// Lines is the report as the harness prints it.
func (r Report) Lines() []string {
	t := r.Tally
	kills := r.Counts[KillLeader] + r.Counts[KillFollower]
	partitions := r.Counts[IsolateLeader] + r.Counts[Split] + r.Counts[OneWay]
	all, unfrozen, ab, ub := r.DoubleOwner()
	silence, _ := longest(Silences(r.ARP))
	var counts []string
	for _, k := range AllFaults {
		if r.Counts[k] > 0 {
			counts = append(counts, fmt.Sprintf("%s %d", k, r.Counts[k]))
		}
	}
	stuck := 0
	var recovered []time.Duration
	for _, f := range r.Faults {
		if f.Stuck {
			stuck++
		}
		if f.Skipped == "" && !f.Stuck {
			recovered = append(recovered, f.Recovered)
		}
	}
	slices.Sort(recovered)
	lines := []string{
		fmt.Sprintf("chaos %s run, seed %d: %d directors (--vip-only, --raft-timing %s), %v of faults",
			r.Mode, r.Seed, r.Directors, r.Timing, r.FaultTime.Round(time.Second)),
		fmt.Sprintf("operations %d: writes %d ok / %d failed / %d unknown, reads %d ok / %d failed, ledger adds %d ok / %d failed / %d unknown",
			t.Ops, t.Writes[OK], t.Writes[Failed], t.Writes[Unknown], t.Reads[OK], t.Reads[Failed], t.Adds[OK], t.Adds[Failed], t.Adds[Unknown]),
		fmt.Sprintf("acknowledged writes %d, lost %d, phantom (failed yet applied) %d, answered exists %d",
			t.Acknowledged, r.Ledger.LostCount(), countAll(r.Ledger.Phantoms), t.ExistsAnswers),
		fmt.Sprintf("linearizable: %s (porcupine, %d operations, %v)", r.linearizable(), r.Lin.Ops, r.Lin.Took.Round(time.Millisecond)),
		fmt.Sprintf("faults %d: kills %d (leader %d), partitions %d; %s", len(r.Faults), kills, r.Counts[KillLeader], partitions, strings.Join(counts, ", ")),
		fmt.Sprintf("longest double VIP owner (ARP answers every %v, lease %v): %v overall%s; %v outside freezes%s",
			arpPeriod, cluster.DefaultLeaderLeaseTimeout, all.Len(), blamed(ab), unfrozen.Len(), blamed(ub)),
		fmt.Sprintf("longest time no director answered ARP for the VIP: %v", silence.Len()),
		fmt.Sprintf("recovery after a fault (every director serving one leader): median %v, max %v, not within %v: %d",
			quantile(recovered, 0.5), quantile(recovered, 1), recoverLimit, stuck),
		fmt.Sprintf("converged %v after the faults stopped", r.Converged.Round(time.Millisecond)),
		fmt.Sprintf("panics %d, directors that exited by themselves %d", len(r.Crashes), len(r.Exits)),
	}
	return lines
}

func blamed(kinds []FaultKind) string {
	if len(kinds) == 0 {
		return ""
	}
	s := make([]string, len(kinds))
	for i, k := range kinds {
		s[i] = string(k)
	}
	return " (during " + strings.Join(s, ", ") + ")"
}

func countAll(m map[string][]int) int {
	n := 0
	for _, v := range m {
		n += len(v)
	}
	return n
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(q*float64(len(sorted)-1))].Round(time.Millisecond)
}
