package registrar

import (
	"sync/atomic"

	"github.com/raftlvs/raftlvs/fsm"
)

// Counters count the registrar's committed writes. A Registrar lives for one term; the
// director keeps one Counters for all of them (Config.Counters), so that the figures
// only grow. Safe for concurrent use.
type Counters struct {
	registered atomic.Uint64 // real servers registered or updated for an alive agent
	drained    atomic.Uint64 // real servers taken out of rotation (a leave or a failure)
	removed    atomic.Uint64 // real servers removed (drained, reaped, no longer served)
}

// CounterValues are a snapshot of Counters.
type CounterValues struct {
	Registered, Drained, Removed uint64
}

// Values reads the counters.
func (c *Counters) Values() CounterValues {
	return CounterValues{Registered: c.registered.Load(), Drained: c.drained.Load(), Removed: c.removed.Load()}
}

// count records one committed write.
func (c *Counters) count(cmd fsm.Command) {
	if c == nil {
		return
	}
	switch cmd := cmd.(type) {
	case fsm.UpsertAgentRS:
		if cmd.RealServer.Admin == fsm.Draining {
			c.drained.Add(1)
		} else {
			c.registered.Add(1)
		}
	case fsm.RemoveRealServer:
		c.removed.Add(1)
	}
}
