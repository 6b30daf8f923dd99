package cluster

import (
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// A failure raft's dropped resumed observation never ended is over once the peer answers
// again; a new failure after it is a new one, with its own event.
func TestAPeerThatAnswersAgainIsReachableThoughItsResumptionWasDropped(t *testing.T) {
	var c contacts
	c.init()
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	answered := map[string]time.Time{"d2": t0.Add(-time.Second)}
	at := func(id string) time.Time { return answered[id] }
	if ev, ok := c.observe(raft.FailedHeartbeatObservation{PeerID: "d2"}, t0, at); !ok || ev.Kind != EventPeerUnreachable {
		t.Fatalf("first failure: %+v %v", ev, ok)
	}
	if _, failing := c.failure("d2", answered["d2"]); !failing {
		t.Fatal("d2 not failing after its heartbeats failed")
	}
	if _, ok := c.observe(raft.FailedHeartbeatObservation{PeerID: "d2"}, t0.Add(time.Second), at); ok {
		t.Error("the same failure told twice")
	}
	// d2 answers again; the ResumedHeartbeatObservation never comes.
	answered["d2"] = t0.Add(2 * time.Second)
	if _, failing := c.failure("d2", answered["d2"]); failing {
		t.Error("d2 still failing after it answered")
	}
	// It fails again: a new failure, told again.
	if ev, ok := c.observe(raft.FailedHeartbeatObservation{PeerID: "d2"}, t0.Add(3*time.Second), at); !ok || ev.Kind != EventPeerUnreachable {
		t.Fatalf("second failure: %+v %v", ev, ok)
	}
	if f, failing := c.failure("d2", answered["d2"]); !failing || !f.since.Equal(t0.Add(3*time.Second)) {
		t.Errorf("second failure: %+v %v, want failing since t0+3s", f, failing)
	}
}
