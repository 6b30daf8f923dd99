package registrar

import (
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

func TestCountersCountCommittedRegistrationsDrainsAndRemovals(t *testing.T) {
	counters := &Counters{}
	h := newHarness(t, func(c *Config) { c.Counters = counters })
	a1 := agent("a1", 1, sp("web", 8080, 100))
	h.pool.set(a1, agent("a2", 2, sp("web", 8080, 100)))
	h.reconcile()
	h.pool.set(left(a1), agent("a2", 2, sp("web", 8080, 100)))
	h.reconcile()
	h.expect("web", 1, 8080, agentRS("a1", 1, "web", 8080, 100, fsm.Draining))
	h.clock.advance(maxDrain)
	h.reconcile()
	h.expect("web", 1, 8080, nil)
	h.clock.advance(time.Minute)
	h.reconcile() // idle: writes nothing, counts nothing
	if got, want := counters.Values(), (CounterValues{Registered: 2, Drained: 1, Removed: 1}); got != want {
		t.Errorf("counters %+v, want %+v", got, want)
	}
}
