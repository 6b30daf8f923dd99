package events

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/fsm"
)

// StateSource is the replicated state as the watcher reads it (*cluster.Node).
type StateSource interface {
	View(func(*fsm.State))
	Watch() (<-chan struct{}, func())
}

// Transitions count the changes of real servers the watcher saw in the state: the
// transitions the leader committed, seen the same on every director.
type Transitions struct {
	// Health counts committed health verdicts by the health they went to.
	HealthUp, HealthDown, HealthUnknown uint64
	// Drains counts real servers put in draining, Activations those put back in
	// rotation, DrainedRemovals those removed while draining (a drain that ended).
	Drains, Activations, DrainedRemovals uint64
}

// StateWatcher turns changes of real servers' health and admin state in the replicated
// state into events, and counts them. It reads only the services the state's change
// journal names: a change costs its service's real servers, not the table.
type StateWatcher struct {
	log *Log
	now func() time.Time

	mu       sync.Mutex
	counts   Transitions
	prev     map[string]map[fsm.RSKey]rsState // by service; nil until the first Observe
	cursor   fsm.Cursor
	onHealth func(rs *fsm.RealServer, from fsm.Health, at time.Time)
}

// OnHealth, called before Run, has fn hear every committed health transition the
// watcher records (the notify hooks' health events). fn runs under the state's read
// lock and must not block.
func (w *StateWatcher) OnHealth(fn func(rs *fsm.RealServer, from fsm.Health, at time.Time)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.onHealth = fn
}

// rsState is what the watcher compares of a real server.
type rsState struct {
	health fsm.Health
	admin  fsm.AdminState
}

// NewStateWatcher records into log.
func NewStateWatcher(log *Log) *StateWatcher {
	return &StateWatcher{log: log, now: time.Now}
}

// Run observes the state after every change until ctx ends. Start it once the node has
// caught up with the cluster: before that a replayed log would pass for news.
func (w *StateWatcher) Run(ctx context.Context, src StateSource) {
	changes, cancel := src.Watch()
	defer cancel()
	for {
		src.View(w.Observe)
		select {
		case <-ctx.Done():
			return
		case <-changes:
		}
	}
}

// Observe compares st with the state last observed and records what changed. The first
// call only takes note. Real servers that appear are not events; a removal is one only
// for a real server that was draining (its drain ended).
func (w *StateWatcher) Observe(st *fsm.State) {
	w.mu.Lock()
	defer w.mu.Unlock()
	cs, next := st.ChangesSince(w.cursor)
	w.cursor = next
	now := w.now()
	var evs []api.Event
	switch {
	case w.prev == nil || cs.All:
		// The first look, or one the journal cannot tell (a snapshot restored): every
		// service, and those gone since.
		tell := w.prev != nil
		if w.prev == nil {
			w.prev = map[string]map[fsm.RSKey]rsState{}
		}
		names := map[string]struct{}{}
		for name := range w.prev {
			names[name] = struct{}{}
		}
		st.Walk(func(svc *fsm.Service, _ []*fsm.RealServer) { names[svc.Name] = struct{}{} })
		for name := range names {
			evs = w.observeService(st, name, tell, now, evs)
		}
	default:
		for name := range cs.Services() {
			evs = w.observeService(st, name, true, now, evs)
		}
	}
	// Walk's order is the map's: sort, so that a batch reads the same on every director.
	slices.SortFunc(evs, func(a, b api.Event) int {
		return cmp.Or(cmp.Compare(a.Subject, b.Subject), cmp.Compare(a.Kind, b.Kind))
	})
	for _, e := range evs {
		w.log.Record(e)
	}
}

// observeService compares service name's real servers with what was last seen of them,
// appending to evs the transitions (when tell) and taking note of the new state.
func (w *StateWatcher) observeService(st *fsm.State, name string, tell bool, now time.Time, evs []api.Event) []api.Event {
	old := w.prev[name]
	cur := make(map[fsm.RSKey]rsState, len(old))
	st.WalkService(name, func(_ *fsm.Service, servers []*fsm.RealServer) {
		for _, rs := range servers {
			k := rs.Key()
			s := rsState{health: rs.Health, admin: rs.Admin}
			cur[k] = s
			o, known := old[k]
			if !tell || !known {
				continue
			}
			if o.health != s.health {
				evs = append(evs, w.health(rs, o.health, now))
				if w.onHealth != nil {
					w.onHealth(rs, o.health, now)
				}
			}
			if o.admin != s.admin {
				evs = append(evs, w.admin(rs, o.admin, now))
			}
		}
	})
	for k, o := range old {
		if _, ok := cur[k]; ok || !tell || o.admin != fsm.Draining {
			continue
		}
		w.counts.DrainedRemovals++
		subject := subjectOf(k.Service, k.Addr, k.Port)
		evs = append(evs, api.Event{At: now, Kind: api.EventDrain, Subject: subject, From: string(fsm.Draining), To: "removed",
			Message: subject + " removed after draining"})
	}
	if len(cur) == 0 {
		delete(w.prev, name)
	} else {
		w.prev[name] = cur
	}
	return evs
}

func (w *StateWatcher) health(rs *fsm.RealServer, from fsm.Health, now time.Time) api.Event {
	switch rs.Health {
	case fsm.HealthUp:
		w.counts.HealthUp++
	case fsm.HealthDown:
		w.counts.HealthDown++
	default:
		w.counts.HealthUnknown++
	}
	subject := subjectOf(rs.Service, rs.Addr, rs.Port)
	msg := fmt.Sprintf("%s is %s", subject, rs.Health)
	if rs.Health == fsm.HealthUnknown {
		msg = subject + " is not checked any more: in rotation"
	}
	if rs.HealthReason != "" {
		msg += ": " + rs.HealthReason
	}
	return api.Event{At: now, Kind: api.EventHealth, Subject: subject, From: string(from), To: string(rs.Health), Message: msg}
}

func (w *StateWatcher) admin(rs *fsm.RealServer, from fsm.AdminState, now time.Time) api.Event {
	subject := subjectOf(rs.Service, rs.Addr, rs.Port)
	msg := subject + " back in rotation"
	if rs.Admin == fsm.Draining {
		w.counts.Drains++
		msg = subject + " draining: weight 0 in IPVS, its connections finish"
	} else {
		w.counts.Activations++
	}
	return api.Event{At: now, Kind: api.EventDrain, Subject: subject, From: string(from), To: string(rs.Admin), Message: msg}
}

// Counts returns the transitions seen so far.
func (w *StateWatcher) Counts() Transitions {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.counts
}

// subjectOf names a real server as the timeline does: "SERVICE ADDR:PORT".
func subjectOf(service string, addr netip.Addr, port uint16) string {
	return service + " " + netip.AddrPortFrom(addr, port).String()
}
