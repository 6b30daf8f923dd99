package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/events"
)

// lockedBuffer is written by the follower goroutine and read by the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestEventsPrintsTheRecentOnesAndFollowsAcrossDirectors(t *testing.T) {
	at := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	l1 := events.NewLog("d1", 0)
	for i, msg := range []string{"d1 is the leader (term 2)", "claimed 192.0.2.10 on eth0", "web 10.0.1.3:80 is down"} {
		l1.Record(api.Event{At: at.Add(time.Duration(i) * time.Second), Kind: api.EventHealth, Message: msg})
	}
	s1 := httptest.NewServer(l1.Handler())
	defer s1.Close()

	code, out, stderr := raftlvs(t, s1.URL, "", "events", "-n", "2")
	if code != exitOK {
		t.Fatalf("events: %d %s", code, stderr)
	}
	if strings.Contains(out, "term 2") || !strings.Contains(out, "claimed 192.0.2.10") || !strings.Contains(out, "10.0.1.3:80 is down") {
		t.Errorf("events -n 2:\n%s", out)
	}
	if code, out, _ := raftlvs(t, s1.URL, "", "events", "-o", "json", "-n", "1"); code != exitOK || !strings.Contains(out, `"director":"d1"`) {
		t.Errorf("events -o json: %d %s", code, out)
	}

	// --follow: d1 goes away, d2 (another timeline) answers; of d2's only what is newer
	// than the last event printed comes out.
	l2 := events.NewLog("d2", 0)
	l2.Record(api.Event{At: at.Add(time.Second), Kind: api.EventVIP, Message: "old news from d2"})
	s2 := httptest.NewServer(l2.Handler())
	defer s2.Close()
	c := api.NewClient(s1.URL, s2.URL)
	list, err := c.Events(context.Background(), 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var w, errw lockedBuffer
	done := make(chan error, 1)
	go func() { done <- followEvents(ctx, c, list, &w, &errw, "text") }()
	l1.Record(api.Event{At: at.Add(5 * time.Second), Kind: api.EventLeader, Message: "no leader known"})
	waitFor(t, "the followed event from d1", func() bool { return strings.Contains(w.String(), "no leader known") })
	s1.CloseClientConnections()
	s1.Close()
	l2.Record(api.Event{At: at.Add(9 * time.Second), Kind: api.EventLeader, Message: "d2 is the leader (term 3)"})
	waitFor(t, "the followed event from d2", func() bool { return strings.Contains(w.String(), "d2 is the leader") })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("follow did not end with its context")
	}
	if strings.Contains(w.String(), "old news") || !strings.Contains(errw.String(), "now following the events of d2") {
		t.Errorf("followed:\n%s\nstderr:\n%s", w.String(), errw.String())
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(40 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 40s", what)
		}
	}
}

// A follower answers status: the voters' reachability comes from its leader, which the
// CLI asks too, so a crashed director shows as unreachable, not as a plain voter.
func TestStatusShowsReachabilityAsTheLeaderSeesIt(t *testing.T) {
	at := time.Date(2026, 11, 21, 12, 0, 30, 0, time.UTC)
	leaderMux := http.NewServeMux()
	leader := httptest.NewServer(leaderMux)
	defer leader.Close()
	follower := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(api.StatusResponse{At: at, Node: api.NodeStatus{NodeID: "d2", State: "Follower", LeaderID: "d1",
			Voters: []api.Voter{
				{ID: "d3", RaftAddr: "10.0.0.3:7000", Suffrage: "Voter", Contact: "unknown"},
				{ID: "d2", RaftAddr: "10.0.0.2:7000", Suffrage: "Voter", Contact: "self"},
				{ID: "d1", RaftAddr: "10.0.0.1:7000", APIAddr: strings.TrimPrefix(leader.URL, "http://"), Suffrage: "Voter", Contact: "reachable", LastContact: at.Add(-time.Second)},
			}}})
	}))
	defer follower.Close()
	leaderMux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(api.StatusResponse{At: at.Add(time.Second), Node: api.NodeStatus{NodeID: "d1", State: "Leader", LeaderID: "d1",
			Voters: []api.Voter{
				{ID: "d1", Contact: "self"}, {ID: "d2", Contact: "reachable"},
				{ID: "d3", Contact: "unreachable", FailingSince: at.Add(-9 * time.Second)},
			}}})
	})
	code, out, stderr := raftlvs(t, follower.URL, "", "status")
	if code != exitOK {
		t.Fatalf("status: %d %s", code, stderr)
	}
	for _, want := range []string{
		"Voters  d1           leader   reachable",
		"        d2           follower self",
		"        d3           follower unreachable (leader's view)",
		"unreachable for 10s",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
}
