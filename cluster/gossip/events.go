package gossip

import "sync"

// EventType says what happened to a member.
type EventType int

const (
	EventJoin   EventType = iota + 1 // joined, or came back after a failure or leave
	EventUpdate                      // announced new metadata
	EventLeave                       // left gracefully (StateLeft)
	EventFail                        // stopped answering (StateDead)
	// EventResync replaces events dropped because the consumer fell behind: re-read
	// Members() to learn the current membership. Its Member is the zero value.
	EventResync
)

func (t EventType) String() string {
	switch t {
	case EventJoin:
		return "join"
	case EventUpdate:
		return "update"
	case EventLeave:
		return "leave"
	case EventFail:
		return "fail"
	case EventResync:
		return "resync"
	}
	return "unknown"
}

// Event is one membership change, with the member as it is after the change.
type Event struct {
	Type   EventType
	Member Member
}

// eventQueue hands events from memberlist's delegate callbacks to one consumer, in order.
// The callbacks run under memberlist's node lock, so push never blocks: a queue that
// reaches its limit collapses into a single EventResync (the current membership subsumes
// every dropped event), which bounds memory whatever the consumer does.
type eventQueue struct {
	mu      sync.Mutex
	pending []Event
	limit   int
	wake    chan struct{} // capacity 1: "pending is not empty"

	out  chan Event
	stop chan struct{}
	done chan struct{}
}

func newEventQueue(limit int) *eventQueue {
	q := &eventQueue{
		limit: limit,
		wake:  make(chan struct{}, 1),
		out:   make(chan Event),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go q.forward()
	return q
}

func (q *eventQueue) push(e Event) {
	q.mu.Lock()
	if len(q.pending) >= q.limit {
		q.pending = append(q.pending[:0], Event{Type: EventResync})
	}
	q.pending = append(q.pending, e)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *eventQueue) pop() (Event, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) == 0 {
		return Event{}, false
	}
	e := q.pending[0]
	q.pending[0] = Event{} // let the member's slices go
	q.pending = q.pending[1:]
	return e, true
}

// forward delivers pending events until close; it closes out when it returns, so a
// consumer ranging over Events() ends when the pool shuts down.
func (q *eventQueue) forward() {
	defer close(q.done)
	defer close(q.out)
	for {
		e, ok := q.pop()
		if !ok {
			select {
			case <-q.wake:
				continue
			case <-q.stop:
				return
			}
		}
		select {
		case q.out <- e:
		case <-q.stop:
			return
		}
	}
}

func (q *eventQueue) close() {
	close(q.stop)
	<-q.done
}
