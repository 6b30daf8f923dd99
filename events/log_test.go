package events

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/api"
)

func seqs(l api.EventList) []uint64 {
	var out []uint64
	for _, e := range l.Events {
		out = append(out, e.Seq)
	}
	return out
}

func TestLogKeepsTheNewestEventsAndSaysWhenSomeWereMissed(t *testing.T) {
	l := NewLog("d1", 3)
	if got := l.Since(0, 0); len(got.Events) != 0 || got.Last != 0 || got.Missed {
		t.Fatalf("empty log: %+v", got)
	}
	for i := range 5 {
		l.Record(api.Event{Kind: api.EventLeader, Subject: string(rune('a' + i))})
	}
	tests := []struct {
		after  uint64
		limit  int
		want   []uint64
		missed bool
	}{
		{0, 0, []uint64{3, 4, 5}, true}, // 1 and 2 fell out
		{1, 0, []uint64{3, 4, 5}, true},
		{2, 0, []uint64{3, 4, 5}, false},
		{4, 0, []uint64{5}, false},
		{5, 0, nil, false},
		{0, 2, []uint64{4, 5}, true},
		{9, 0, []uint64{3, 4, 5}, true}, // a seq of another run of the log: from the start
	}
	for _, tt := range tests {
		got := l.Since(tt.after, tt.limit)
		if !slices.Equal(seqs(got), tt.want) || got.Missed != tt.missed || got.Last != 5 || got.Director != "d1" {
			t.Errorf("Since(%d, %d) = seqs %v missed %v last %d, want %v missed %v last 5", tt.after, tt.limit, seqs(got), got.Missed, got.Last, tt.want, tt.missed)
		}
	}
	if e := l.Since(4, 0).Events[0]; e.Director != "d1" || e.Subject != "e" || e.At.IsZero() {
		t.Errorf("event 5: %+v, want recorded by d1 with a time", e)
	}
}

func TestWaitReturnsAtTheNextEventOrAtTheEndOfTheWait(t *testing.T) {
	l := NewLog("d1", 0)
	l.Record(api.Event{Kind: api.EventVIP})
	if got := l.Wait(context.Background(), 0, time.Hour, 0); !slices.Equal(seqs(got), []uint64{1}) {
		t.Fatalf("Wait with an event there already: %v", seqs(got))
	}
	got := make(chan api.EventList, 1)
	go func() { got <- l.Wait(context.Background(), 1, time.Hour, 0) }()
	l.Record(api.Event{Kind: api.EventHealth})
	select {
	case g := <-got:
		if !slices.Equal(seqs(g), []uint64{2}) {
			t.Fatalf("Wait woke with %v, want [2]", seqs(g))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return after the next event")
	}
	if g := l.Wait(context.Background(), 2, time.Millisecond, 0); len(g.Events) != 0 || g.Last != 2 {
		t.Errorf("Wait that timed out: %+v", g)
	}
}

func TestHandlerServesTheLogAndRefusesBadQueries(t *testing.T) {
	l := NewLog("d2", 0)
	l.Record(api.Event{Kind: api.EventDrift, Subject: "web", Message: "web edited back"})
	srv := httptest.NewServer(l.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/v1/events?after=0&wait=1s&limit=10")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list api.EventList
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, decode %v", resp.StatusCode, err)
	}
	if list.Director != "d2" || list.Log == "" || len(list.Events) != 1 || list.Events[0].Message != "web edited back" {
		t.Errorf("answer %+v", list)
	}
	for _, q := range []string{"after=x", "limit=-1", "wait=forever"} {
		resp, err := http.Get(srv.URL + "/v1/events?" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", q, resp.StatusCode)
		}
	}
}
