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
// state into events, and counts them.
type StateWatcher struct {
	log *Log
	now func() time.Time

	mu     sync.Mutex
	counts Transitions
	prev   map[fsm.RSKey]rsState // nil until the first Observe, which only takes note
	seen   map[fsm.RSKey]bool    // scratch: the keys of the pass
}

// rsState is what the watcher compares of a real server.
type rsState struct {
	health fsm.Health
	admin  fsm.AdminState
}

// NewStateWatcher records into log.
func NewStateWatcher(log *Log) *StateWatcher {
	return &StateWatcher{log: log, now: time.Now, seen: map[fsm.RSKey]bool{}}
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
	first := w.prev == nil
	if first {
		w.prev = map[fsm.RSKey]rsState{}
	}
	clear(w.seen)
	now := w.now()
	var evs []api.Event
	st.Walk(func(_ *fsm.Service, servers []*fsm.RealServer) {
		for _, rs := range servers {
			k := rs.Key()
			w.seen[k] = true
			cur := rsState{health: rs.Health, admin: rs.Admin}
			old, known := w.prev[k]
			w.prev[k] = cur
			if first || !known {
				continue
			}
			if old.health != cur.health {
				evs = append(evs, w.health(rs, old.health, now))
			}
			if old.admin != cur.admin {
				evs = append(evs, w.admin(rs, old.admin, now))
			}
		}
	})
	for k, old := range w.prev {
		if w.seen[k] {
			continue
		}
		delete(w.prev, k)
		if old.admin == fsm.Draining {
			w.counts.DrainedRemovals++
			subject := subjectOf(k.Service, k.Addr, k.Port)
			evs = append(evs, api.Event{At: now, Kind: api.EventDrain, Subject: subject, From: string(fsm.Draining), To: "removed",
				Message: subject + " removed after draining"})
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
