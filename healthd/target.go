package healthd

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/raftlvs/raftlvs/fsm"
)

// Target is one real server to check: where, how, and what the state last said of it.
type Target struct {
	Key fsm.RSKey
	// To is the address probed: the real server's, with the check's port if it sets one.
	To    netip.AddrPort
	Check *fsm.HealthCheck // the effective spec, a copy
	// Health is the committed verdict, from which a new tracker starts.
	Health fsm.Health
}

// Targets lists the checks the replicated state asks for, ordered by real server: every
// real server with an effective check (its own, else its service's) of a type other than
// none. The caller holds whatever lock guards s; nothing returned points into it.
func Targets(s *fsm.State) []Target {
	var out []Target
	s.Walk(func(svc *fsm.Service, servers []*fsm.RealServer) {
		for _, rs := range servers {
			check := fsm.EffectiveCheck(svc, rs)
			if check == nil || check.Type == fsm.CheckNone {
				continue
			}
			port := rs.Port
			if check.Port != 0 {
				port = check.Port
			}
			out = append(out, Target{
				Key:    rs.Key(),
				To:     netip.AddrPortFrom(rs.Addr, port),
				Check:  check.Clone(),
				Health: rs.Health,
			})
		}
	})
	slices.SortFunc(out, func(a, b Target) int { return compareKeys(a.Key, b.Key) })
	return out
}

func compareKeys(a, b fsm.RSKey) int {
	return cmp.Or(cmp.Compare(a.Service, b.Service), a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port))
}
