package healthd

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// Defaults of Aggregation.
const (
	// DefaultFreshness is how old a director's view may be and still count: a few of the
	// 1–2 s periods at which directors send them.
	DefaultFreshness = 5 * time.Second
	// DefaultLoneLimit is how many real servers one director may be alone in seeing down
	// before it is more likely its own network than theirs.
	DefaultLoneLimit = 3
)

// maxReason bounds a committed reason (fsm.MaxCheckText bounds it harder).
const maxReason = 200

// AgentVerdict is what a real server's agent says of its own service.
type AgentVerdict struct {
	Key    fsm.RSKey  `json:"key"`
	Health fsm.Health `json:"health"` // down takes the server down; up lets the directors decide
	Reason string     `json:"reason,omitempty"`
	At     time.Time  `json:"at"` // when the leader last saw it current
}

// Aggregation is what the leader decides from.
type Aggregation struct {
	State  *fsm.State // read only; the caller holds its lock
	Leader string     // this director's id
	// Views are the directors' latest views, the leader's own included, with At set to
	// when each reached the leader. Views of witnesses and of directors the state does
	// not list do not count.
	Views     []View
	Agents    []AgentVerdict
	Now       time.Time
	Freshness time.Duration // older views and agent verdicts do not count; 0 is DefaultFreshness
	// LoneLimit: a director alone in seeing more real servers down than this gets a
	// warning, and if it is the leader none of them go down. 0 is DefaultLoneLimit;
	// negative, the leader alone takes none down.
	LoneLimit int
}

// Decision is what the leader commits and what it should say.
type Decision struct {
	// Command holds the transitions, ordered by real server, for one Raft entry; no
	// updates, nothing to commit.
	Command  fsm.SetHealths
	Warnings []Warning
}

// Empty reports a decision with nothing to commit.
func (d Decision) Empty() bool { return len(d.Command.Updates) == 0 }

// vote is one director's verdict on one real server.
type vote struct {
	director string
	health   fsm.Health
	reason   string
}

// Aggregate decides the health transitions from the directors' views and the agents'
// verdicts. It is pure and deterministic. The rules:
//   - a director's view counts if it is fresh and the director is a listed non-witness;
//     a real server's voters are the counted views that have a verdict on it;
//   - an agent's fresh "down" takes its real server down;
//   - otherwise a strict majority of the voters takes it down, or brings it up (a tie
//     changes nothing); without voters, the agent's "up" brings it up;
//   - in a cluster of several directors, a follower that is a server's only voter never
//     takes it down; a director alone in seeing more than LoneLimit servers down is
//     warned of, and if it is the leader none of those go down;
//   - a real server with no check (none or nil) and no agent verdict becomes unknown;
//   - per service with FailOpenPercent, if the downs would leave more than that share of
//     its real servers down, none of them go down (the last good set stays) and a
//     warning says so;
//   - only transitions are returned: a server whose health is what it was is left alone.
func Aggregate(in Aggregation) Decision {
	freshness := cmp.Or(in.Freshness, DefaultFreshness)
	lone := cmp.Or(in.LoneLimit, DefaultLoneLimit)
	fresh := func(at time.Time) bool { d := in.Now.Sub(at); return d <= freshness && d >= -freshness }

	eligible := map[string]bool{}
	for _, d := range in.State.Directors() {
		if !d.Witness {
			eligible[d.ID] = true
		}
	}
	multi := len(eligible) > 1

	views := map[string]View{}
	for _, v := range in.Views {
		if old, dup := views[v.Director]; !eligible[v.Director] || !fresh(v.At) || (dup && !v.At.After(old.At)) {
			continue
		}
		views[v.Director] = v
	}
	votes := map[fsm.RSKey][]vote{}
	for _, id := range slices.Sorted(maps.Keys(views)) {
		for _, sv := range views[id].Servers {
			if sv.Health == fsm.HealthUp || sv.Health == fsm.HealthDown {
				votes[sv.RSKey] = append(votes[sv.RSKey], vote{director: id, health: sv.Health, reason: sv.Reason})
			}
		}
	}
	agents := map[fsm.RSKey]AgentVerdict{}
	for _, a := range in.Agents {
		if fresh(a.At) {
			agents[a.Key] = a
		}
	}

	var d Decision
	blocked := map[fsm.RSKey]bool{}
	if multi {
		d.Warnings = append(d.Warnings, loneWarnings(in.Leader, votes, agents, lone, blocked)...)
	}
	j := judge{leader: in.Leader, multi: multi, votes: votes, agents: agents, blocked: blocked}

	var failOpen []Warning
	in.State.Walk(func(svc *fsm.Service, servers []*fsm.RealServer) {
		updates, w := j.service(svc, servers, in.Now)
		d.Command.Updates = append(d.Command.Updates, updates...)
		if w != nil {
			failOpen = append(failOpen, *w)
		}
	})
	slices.SortFunc(failOpen, func(a, b Warning) int { return cmp.Compare(a.Service, b.Service) })
	d.Warnings = append(d.Warnings, failOpen...)
	slices.SortFunc(d.Command.Updates, func(a, b fsm.SetHealth) int { return compareKeys(a.Key, b.Key) })
	return d
}

// judge holds what one aggregation decides by.
type judge struct {
	leader  string
	multi   bool
	votes   map[fsm.RSKey][]vote
	agents  map[fsm.RSKey]AgentVerdict
	blocked map[fsm.RSKey]bool // down votes the lone-director rule discards
}

// service decides one service's transitions and holds its downs if they would break its
// fail-open share.
func (j *judge) service(svc *fsm.Service, servers []*fsm.RealServer, now time.Time) ([]fsm.SetHealth, *Warning) {
	var updates, downs []fsm.SetHealth
	downAfter := 0
	for _, rs := range servers {
		check := fsm.EffectiveCheck(svc, rs)
		health, reason, ok := j.verdict(rs.Key(), check != nil && check.Type != fsm.CheckNone)
		if !ok || health == rs.Health {
			if rs.Health == fsm.HealthDown {
				downAfter++
			}
			continue
		}
		u := fsm.SetHealth{Key: rs.Key(), Health: health, Reason: clip(reason, maxReason), Since: now}
		if health == fsm.HealthDown {
			downAfter++
			downs = append(downs, u)
			continue
		}
		updates = append(updates, u)
	}
	if len(downs) == 0 {
		return updates, nil
	}
	total, pct := len(servers), svc.FailOpenPercent
	if pct == 0 || downAfter*100 <= pct*total {
		return append(updates, downs...), nil
	}
	keys := make([]fsm.RSKey, len(downs))
	for i, u := range downs {
		keys[i] = u.Key
	}
	slices.SortFunc(keys, compareKeys)
	return updates, &Warning{
		Kind:    WarnFailOpen,
		Service: svc.Name,
		Servers: keys,
		Message: fmt.Sprintf("service %s: %d of its %d real servers would be down, more than its fail_open_percent %d%%: keeping the last good set, holding %d down (%s)",
			svc.Name, downAfter, total, pct, len(downs), listKeys(keys)),
	}
}

// verdict is the health one real server should have, and why; ok false leaves it as is.
func (j *judge) verdict(key fsm.RSKey, checked bool) (fsm.Health, string, bool) {
	agent, hasAgent := j.agents[key]
	if hasAgent && agent.Health == fsm.HealthDown {
		return fsm.HealthDown, "agent: " + cmp.Or(agent.Reason, "down"), true
	}
	if vs := j.votes[key]; len(vs) > 0 {
		n, downs := len(vs), 0
		for _, v := range vs {
			if v.health == fsm.HealthDown {
				downs++
			}
		}
		switch {
		case 2*downs > n:
			if j.blocked[key] || (j.multi && n == 1 && vs[0].director != j.leader) {
				return "", "", false // a lone view: the leader's beyond the limit, or a follower's
			}
			return fsm.HealthDown, tally(vs, fsm.HealthDown, downs), true
		case 2*(n-downs) > n:
			return fsm.HealthUp, tally(vs, fsm.HealthUp, n-downs), true
		}
		return "", "", false
	}
	switch {
	case hasAgent && agent.Health == fsm.HealthUp:
		return fsm.HealthUp, "agent: " + cmp.Or(agent.Reason, "up"), true
	case !checked:
		return fsm.HealthUnknown, "not checked", true
	}
	return "", "", false
}

// tally is the reason most of the directors that say h give, and how many of all say
// it. Voters are few: counting by scanning beats a map.
func tally(vs []vote, h fsm.Health, agree int) string {
	best, bestCount := "", 0
	for i, v := range vs { // in director order: a tie goes to the first
		if v.health != h {
			continue
		}
		count := 0
		for _, w := range vs[i:] {
			if w.health == h && w.reason == v.reason {
				count++
			}
		}
		if count > bestCount {
			best, bestCount = v.reason, count
		}
	}
	noun := "directors"
	if len(vs) == 1 {
		noun = "director"
	}
	return fmt.Sprintf("%s (%d of %d %s)", cmp.Or(best, string(h)), agree, len(vs), noun)
}

// loneWarnings finds the directors alone in seeing many servers down: the leader's lone
// downs are blocked, and each such director is warned of.
func loneWarnings(leader string, votes map[fsm.RSKey][]vote, agents map[fsm.RSKey]AgentVerdict, limit int, blocked map[fsm.RSKey]bool) []Warning {
	alone := map[string][]fsm.RSKey{}
	for key, vs := range votes {
		if a, ok := agents[key]; ok && a.Health == fsm.HealthDown {
			continue // the agent agrees: not alone
		}
		var downBy []string
		for _, v := range vs {
			if v.health == fsm.HealthDown {
				downBy = append(downBy, v.director)
			}
		}
		if len(downBy) == 1 {
			alone[downBy[0]] = append(alone[downBy[0]], key)
		}
	}
	var out []Warning
	for _, id := range slices.Sorted(maps.Keys(alone)) {
		keys := alone[id]
		if len(keys) <= max(limit, 0) {
			continue
		}
		slices.SortFunc(keys, compareKeys)
		w := Warning{Kind: WarnLoneDirector, Director: id, Servers: keys}
		if id == leader {
			for _, k := range keys {
				blocked[k] = true
			}
			w.Message = fmt.Sprintf("director %s (the leader) alone sees %d real servers down (%s): its own path to them is the likelier fault, so none of them is taken down; consider moving leadership off it",
				id, len(keys), listKeys(keys))
		} else {
			w.Message = fmt.Sprintf("director %s alone sees %d real servers down (%s): check its network; its view alone takes nothing down",
				id, len(keys), listKeys(keys))
		}
		out = append(out, w)
	}
	return out
}

// listKeys names a few real servers, for a message.
func listKeys(keys []fsm.RSKey) string {
	const show = 5
	var names []string
	for _, k := range keys[:min(len(keys), show)] {
		names = append(names, fmt.Sprintf("%s %s", k.Service, netip.AddrPortFrom(k.Addr, k.Port)))
	}
	s := strings.Join(names, ", ")
	if len(keys) > show {
		s += fmt.Sprintf(" and %d more", len(keys)-show)
	}
	return s
}
