package gossip

import (
	"testing"
	"time"
)

func receive(t *testing.T, ch <-chan Event) Event {
	t.Helper()
	select {
	case e := <-ch:
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
		return Event{}
	}
}

func TestEventQueueKeepsOrder(t *testing.T) {
	q := newEventQueue(10)
	defer q.close()
	for _, name := range []string{"a", "b", "c"} {
		q.push(Event{Type: EventJoin, Member: Member{Name: name}})
	}
	for _, want := range []string{"a", "b", "c"} {
		if e := receive(t, q.out); e.Member.Name != want {
			t.Fatalf("got %s, want %s", e.Member.Name, want)
		}
	}
}

// A consumer that falls behind gets one EventResync instead of the events it missed,
// then the events that came after, and the producer never blocks.
func TestEventQueueCoalescesWhenTheConsumerIsSlow(t *testing.T) {
	const limit = 4
	q := newEventQueue(limit)
	defer q.close()
	// The forwarder may already hold the first event, waiting to hand it over.
	for i := range 3 * limit {
		q.push(Event{Type: EventUpdate, Member: Member{Name: string(rune('a' + i))}})
	}
	first := receive(t, q.out)
	if first.Type != EventResync {
		first = receive(t, q.out)
	}
	if first.Type != EventResync {
		t.Fatalf("got %v, want a resync", first.Type)
	}
	newest := string(rune('a' + 3*limit - 1))
	var rest []string
	for len(rest) == 0 || rest[len(rest)-1] != newest {
		rest = append(rest, receive(t, q.out).Member.Name)
	}
	if len(rest) > limit {
		t.Fatalf("after the resync got %v, want at most %d events", rest, limit)
	}
}

func TestEventQueueCloseClosesTheChannel(t *testing.T) {
	q := newEventQueue(1)
	q.push(Event{Type: EventJoin})
	q.close()
	for range q.out { // drains whatever was handed over, then ends
	}
}
