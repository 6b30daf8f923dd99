package chaos

import (
	"net/netip"

	"github.com/raftlvs/raftlvs/api"
)

// LedgerCheck is what became of the ledger's adds on every director.
type LedgerCheck struct {
	Acked int
	// Lost are acknowledged adds missing from a director's replica; Phantoms are adds
	// that failed (nothing was logged, the director said) and are there all the same.
	Lost, Phantoms map[string][]int
}

// checkLedger looks for every add of h in each director's final replica.
func checkLedger(h []Op, states map[string]*api.StateDump) LedgerCheck {
	lc := LedgerCheck{Lost: map[string][]int{}, Phantoms: map[string][]int{}}
	for _, op := range h {
		if op.Kind == Add && op.Outcome == OK {
			lc.Acked++
		}
	}
	for id, st := range states {
		present := map[netip.Addr]bool{}
		for _, rs := range st.RealServers {
			if rs.Service == ledgerService {
				present[rs.Addr] = true
			}
		}
		for _, op := range h {
			if op.Kind != Add {
				continue
			}
			switch there := present[ledgerAddr(op.Entry)]; {
			case op.Outcome == OK && !there:
				lc.Lost[id] = append(lc.Lost[id], op.Entry)
			case op.Outcome == Failed && there:
				lc.Phantoms[id] = append(lc.Phantoms[id], op.Entry)
			}
		}
	}
	return lc
}

// LostCount is the number of acknowledged adds missing from at least one director.
func (lc LedgerCheck) LostCount() int {
	seen := map[int]bool{}
	for _, entries := range lc.Lost {
		for _, e := range entries {
			seen[e] = true
		}
	}
	return len(seen)
}
