// Package events is a director's timeline: the last few thousand things that happened as
// it saw them (leader changes, VIPs claimed and released, health transitions, drains,
// drift repaired), kept in memory and served as GET /v1/events, with a long poll for
// followers of the log (raftlvs events --follow, the status page). The components feed
// it through small hooks the daemon wires (cluster.Config.OnEvent, vip.Config.OnEvent,
// ipvs.ReconcilerConfig.OnRepair) and a watcher of the replicated state (WatchState).
// See DESIGN.md.
package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"github.com/raftlvs/raftlvs/api"
)

// DefaultCapacity is how many events a Log keeps.
const DefaultCapacity = 4096

// Log is one director's timeline, a ring of the newest events. Safe for concurrent use.
type Log struct {
	director string
	id       string
	now      func() time.Time

	mu   sync.Mutex
	ring []api.Event // ring[(seq-1) % cap]
	last uint64      // the newest seq; 0 before the first event
	wake chan struct{}
}

// NewLog returns an empty timeline of director that keeps capacity events (0:
// DefaultCapacity).
func NewLog(director string, capacity int) *Log {
	if capacity <= 0 {
		capacity = DefaultCapacity
	}
	b := make([]byte, 6)
	rand.Read(b) // never fails
	return &Log{director: director, id: hex.EncodeToString(b), now: time.Now,
		ring: make([]api.Event, capacity), wake: make(chan struct{})}
}

// Record adds e with the next sequence number and this director's name (and the time
// now, if e has none), and wakes the waiting readers.
func (l *Log) Record(e api.Event) {
	if e.At.IsZero() {
		e.At = l.now()
	}
	e.Director = l.director
	l.mu.Lock()
	l.last++
	e.Seq = l.last
	l.ring[(e.Seq-1)%uint64(len(l.ring))] = e
	close(l.wake)
	l.wake = make(chan struct{})
	l.mu.Unlock()
}

// Since returns the events after seq after, oldest first, at most limit of them (the
// newest; 0 for no limit).
func (l *Log) Since(after uint64, limit int) api.EventList {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sinceLocked(after, limit)
}

func (l *Log) sinceLocked(after uint64, limit int) api.EventList {
	out := api.EventList{Director: l.director, At: l.now(), Log: l.id, Last: l.last, Events: []api.Event{}}
	if after > l.last {
		after = 0 // a seq of an older run of the log: start over
	}
	first := after + 1
	if oldest := l.oldestLocked(); first < oldest {
		out.Missed = after != 0 || oldest > 1
		first = oldest
	}
	if limit > 0 && l.last >= first && l.last-first+1 > uint64(limit) {
		first = l.last - uint64(limit) + 1
	}
	for seq := first; seq <= l.last; seq++ {
		out.Events = append(out.Events, l.ring[(seq-1)%uint64(len(l.ring))])
	}
	return out
}

// oldestLocked is the oldest seq the ring still holds.
func (l *Log) oldestLocked() uint64 {
	if n := uint64(len(l.ring)); l.last > n {
		return l.last - n + 1
	}
	return 1
}

// Wait is Since that, when nothing came after seq after, waits for the next event, for
// ctx to end or for wait to pass; it then returns what there is (possibly nothing).
func (l *Log) Wait(ctx context.Context, after uint64, wait time.Duration, limit int) api.EventList {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		l.mu.Lock()
		if after > l.last || after < l.last || wait <= 0 {
			defer l.mu.Unlock()
			return l.sinceLocked(after, limit)
		}
		wake := l.wake
		l.mu.Unlock()
		select {
		case <-wake:
		case <-timer.C:
			return l.Since(after, limit)
		case <-ctx.Done():
			return l.Since(after, limit)
		}
	}
}
