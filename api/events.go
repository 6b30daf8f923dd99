package api

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// Kinds of Event.
const (
	EventLeader = "leader" // the leader changed, or was lost
	EventPeer   = "peer"   // the leader's heartbeats to a voter failed, or resumed
	EventVIP    = "vip"    // this director put a VIP on its interface, or took it off
	EventHealth = "health" // a real server's committed health changed
	EventDrain  = "drain"  // a real server was drained, put back in rotation, or removed drained
	EventDrift  = "drift"  // the IPVS table was edited behind raftlvs's back and repaired
)

// Event is one entry of a director's timeline, GET /v1/events.
type Event struct {
	Seq      uint64    `json:"seq"`      // 1, 2, … within one director's log
	At       time.Time `json:"at"`       // when the recording director saw it, by its clock
	Director string    `json:"director"` // the director that recorded it
	Kind     string    `json:"kind"`     // Event*
	// Subject is what changed: a director id, a VIP, "SERVICE ADDR:PORT", a service.
	Subject string `json:"subject"`
	From    string `json:"from,omitempty"` // the state before, where there is one
	To      string `json:"to,omitempty"`   // the state after
	// Message is the event as a sentence, for a person.
	Message string `json:"message"`
}

// EventList is the answer of GET /v1/events.
type EventList struct {
	Director string    `json:"director"` // the director whose log this is
	At       time.Time `json:"at"`       // when it answered, by its clock
	// Log names this run of the director's log: the log lives in memory, so a restart
	// starts a new one, with Seq from 1 again.
	Log string `json:"log"`
	// Events are the events after the one asked for, oldest first.
	Events []Event `json:"events"`
	// Last is the newest Seq in the log (0: none yet); ask after=Last for what comes next.
	Last uint64 `json:"last"`
	// Missed says events after the one asked for fell out of the log (it keeps the last
	// few thousand).
	Missed bool `json:"missed,omitempty"`
}

// MaxEventsWait bounds the wait of GET /v1/events?wait=.
const MaxEventsWait = time.Minute

// Events returns the answering director's events after seq after (0: all it keeps).
// With wait > 0 the director holds the request until there is one, or wait has passed
// (then Events is empty). limit > 0 keeps the newest limit of them.
func (c *Client) Events(ctx context.Context, after uint64, wait time.Duration, limit int) (*EventList, error) {
	path := fmt.Sprintf("/v1/events?after=%d", after)
	if wait > 0 {
		path += "&wait=" + wait.String()
	}
	if limit > 0 {
		path += fmt.Sprintf("&limit=%d", limit)
	}
	if wait > 0 {
		// The call may last the wait itself: give it that on top of the usual bound.
		ctx = context.WithValue(ctx, extraTimeKey{}, wait)
	}
	return call[EventList](ownData(ctx), c, http.MethodGet, path, nil)
}
