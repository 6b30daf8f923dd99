package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// answers replies to the n-th request (from 0) with the n-th handler, and with the last
// one after that, counting the requests.
type answers struct {
	n        atomic.Int32
	handlers []http.HandlerFunc
}

func (a *answers) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	i := int(a.n.Add(1)) - 1
	a.handlers[min(i, len(a.handlers)-1)](w, r)
}

func replyError(status int, code string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(ErrorBody{Error: "said so", Code: code})
	}
}

func replyService(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(ServiceInfo{Service: fsm.Service{Name: "web"}})
}

func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func client(t *testing.T, timeout time.Duration, addrs ...string) *Client {
	c := NewClient(addrs...)
	c.Timeout = timeout
	return c
}

func TestWriteNoLeaderTookIsSentAgainUntilALeaderTakesIt(t *testing.T) {
	a := &answers{handlers: []http.HandlerFunc{replyError(503, CodeUnavailable), replyError(503, CodeUnavailable), replyService}}
	hs := httptest.NewServer(a)
	defer hs.Close()
	got, err := client(t, 10*time.Second, hs.URL).AddService(context.Background(), fsm.Service{})
	if err != nil || got.Name != "web" || a.n.Load() != 3 {
		t.Fatalf("got %+v, %v after %d requests; want the third attempt's answer", got, err, a.n.Load())
	}
}

// A leader whose disk is full logged nothing (507): the write goes to the next director,
// as after a 503, and is the cluster's to take once another leads.
func TestWriteALeaderWithAFullDiskRefusedIsSentAgain(t *testing.T) {
	a := &answers{handlers: []http.HandlerFunc{replyError(507, CodeDiskFull), replyService}}
	hs := httptest.NewServer(a)
	defer hs.Close()
	got, err := client(t, 10*time.Second, hs.URL).AddService(context.Background(), fsm.Service{})
	if err != nil || got.Name != "web" || a.n.Load() != 2 {
		t.Fatalf("got %+v, %v after %d requests; want the second attempt's answer", got, err, a.n.Load())
	}
	a = &answers{handlers: []http.HandlerFunc{replyError(507, CodeDiskFull)}}
	hs2 := httptest.NewServer(a)
	defer hs2.Close()
	// Attempts go at 0, 100 and 300 ms (retryMin, doubling): a timeout of 300 ms could
	// expire during the third, whose outcome is then unknown. At 250 it expires in the
	// wait before it, every time.
	_, err = client(t, 250*time.Millisecond, hs2.URL).AddService(context.Background(), fsm.Service{})
	if !errors.Is(err, ErrDiskFull) || !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("err %v, want ErrDiskFull, a kind of ErrUnavailable (nothing logged)", err)
	}
}

func TestWriteToUnreachableDirectorsIsSentAgainUntilTheTimeout(t *testing.T) {
	start := time.Now()
	_, err := client(t, 400*time.Millisecond, deadAddr(t), deadAddr(t)).AddService(context.Background(), fsm.Service{})
	if !errors.Is(err, ErrUnreachable) || errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("err %v, want ErrUnreachable and not an unknown outcome", err)
	}
	if time.Since(start) < 300*time.Millisecond {
		t.Fatalf("gave up after %v, before the timeout", time.Since(start))
	}
}

func TestAWriteWhoseOutcomeIsUnknownIsNeverSentTwice(t *testing.T) {
	t.Run("the server says so (504)", func(t *testing.T) {
		a := &answers{handlers: []http.HandlerFunc{replyError(504, CodeOutcomeUnknown), replyService}}
		hs := httptest.NewServer(a)
		defer hs.Close()
		other := &answers{handlers: []http.HandlerFunc{replyService}}
		hs2 := httptest.NewServer(other)
		defer hs2.Close()
		_, err := client(t, 5*time.Second, hs.URL, hs2.URL).AddService(context.Background(), fsm.Service{})
		if !errors.Is(err, ErrOutcomeUnknown) || a.n.Load() != 1 || other.n.Load() != 0 {
			t.Fatalf("err %v after %d+%d requests; want ErrOutcomeUnknown after one", err, a.n.Load(), other.n.Load())
		}
	})
	t.Run("no answer came back", func(t *testing.T) {
		// The call ends (its ctx) while the director holds the request: as a commit that
		// takes longer than the client waits.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		a := &answers{handlers: []http.HandlerFunc{func(w http.ResponseWriter, r *http.Request) {
			io.ReadAll(r.Body) // read whole, the server notices the client hanging up
			cancel()
			<-r.Context().Done()
		}}}
		hs := httptest.NewServer(a)
		defer hs.Close()
		_, err := client(t, time.Hour, hs.URL).AddService(ctx, fsm.Service{})
		if !errors.Is(err, ErrOutcomeUnknown) || a.n.Load() != 1 {
			t.Fatalf("err %v after %d requests; want ErrOutcomeUnknown after one", err, a.n.Load())
		}
	})
}

func TestAnswersEndTheCall(t *testing.T) {
	a := &answers{handlers: []http.HandlerFunc{replyError(409, CodeExists)}}
	hs := httptest.NewServer(a)
	defer hs.Close()
	_, err := client(t, 5*time.Second, hs.URL).AddService(context.Background(), fsm.Service{})
	var apiErr *Error
	if !errors.Is(err, fsm.ErrExists) || !errors.As(err, &apiErr) || a.n.Load() != 1 {
		t.Fatalf("err %v after %d requests", err, a.n.Load())
	}
}

func TestReadsFailAtOnceWhenNoDirectorAnswersAndWaitOutA503(t *testing.T) {
	// An hour's timeout: a read that tried again would hang the test.
	if _, err := client(t, time.Hour, deadAddr(t)).Services(context.Background()); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("err %v, want ErrUnreachable", err)
	}
	a := &answers{handlers: []http.HandlerFunc{replyError(503, CodeUnavailable), func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(ServiceList{Services: []ServiceInfo{{Service: fsm.Service{Name: "web"}}}})
	}}}
	hs := httptest.NewServer(a)
	defer hs.Close()
	svcs, err := client(t, 10*time.Second, hs.URL).Services(context.Background())
	if err != nil || len(svcs) != 1 || a.n.Load() != 2 {
		t.Fatalf("got %v, %v after %d requests", svcs, err, a.n.Load())
	}
}

// A chunk goes in the binary encoding; a director that takes only JSON (an older release)
// answers 400 on the body, and gets the same chunk as JSON.
func TestAChunkAnOlderDirectorRefusesIsSentAgainAsJSON(t *testing.T) {
	var types []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		types = append(types, r.Header.Get("Content-Type"))
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("Content-Type") != "application/json" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(ErrorBody{Error: "body: Content-Type must be application/json", Field: "body", Code: "invalid"})
			return
		}
		var req StageRequest
		if err := json.Unmarshal(body, &req); err != nil || len(req.Commands) != 1 || req.Commands[0].Op != OpRemoveService {
			t.Errorf("JSON chunk %s: %v", body, err)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	c := client(t, 5*time.Second, srv.URL)
	if err := c.StageChunk(context.Background(), "tx", 0, []fsm.Command{fsm.RemoveService{Name: "web"}}); err != nil {
		t.Fatal(err)
	}
	if want := []string{CommandsContentType, "application/json"}; !slices.Equal(types, want) {
		t.Errorf("sent as %q, want %q", types, want)
	}
}

// The first chunk of a staged change that fails stops the chunks in flight, which would
// each wait out their own timeout, and the change is aborted.
func TestAFailedChunkStopsTheOthersAndAborts(t *testing.T) {
	var waitedOut, aborted atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // read in full, the server sees the client go
		switch {
		case r.Method == http.MethodDelete:
			aborted.Add(1)
			w.WriteHeader(http.StatusNoContent)
		case strings.HasSuffix(r.URL.Path, "/chunks/0"):
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(ErrorBody{Error: "commands[3]: no", Field: "commands[3]", Code: "invalid"})
		default: // a leader that takes its time: it answers only when the client gives up
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
				waitedOut.Add(1)
			}
		}
	}))
	defer srv.Close()
	var cmds []fsm.Command
	for i := range 2*StagedChunk + 1 { // three chunks, all in flight at once
		cmds = append(cmds, fsm.RemoveService{Name: fmt.Sprintf("s%d", i)})
	}
	_, err := client(t, 10*time.Minute, srv.URL).Apply(context.Background(), cmds, false)
	srv.Close() // waits for the handlers
	if !errors.Is(err, fsm.ErrInvalid) || !strings.Contains(err.Error(), "stage chunk 1 of 3") || strings.Contains(err.Error(), "chunk 2 of 3") {
		t.Errorf("err %v, want chunk 1's refusal alone", err)
	}
	if waitedOut.Load() != 0 || aborted.Load() != 1 {
		t.Errorf("%d chunks in flight went on after the failure, %d aborts; want none and 1", waitedOut.Load(), aborted.Load())
	}
}

// A staged change whose caller gave up before its chunks went out is not sent, and says
// so; it is not a commit of unknown outcome.
func TestAStagedChangeTheCallerCancelledIsNotCommitted(t *testing.T) {
	var commits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if strings.HasSuffix(r.URL.Path, "/commit") {
			commits.Add(1)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	var cmds []fsm.Command
	for i := range StagedChunk + 1 {
		cmds = append(cmds, fsm.RemoveService{Name: fmt.Sprintf("s%d", i)})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := client(t, time.Minute, srv.URL).Apply(ctx, cmds, false)
	srv.Close()
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrOutcomeUnknown) || commits.Load() != 0 {
		t.Errorf("err %v after %d commits; want the cancellation, no unknown outcome, no commit", err, commits.Load())
	}
	if _, err := client(t, time.Minute, srv.URL).Apply(context.Background(), append(cmds, fsm.SetClusterID{ID: "x"}), false); !errors.Is(err, fsm.ErrInvalid) {
		t.Errorf("a staged change holding a cluster id: %v, want ErrInvalid", err)
	}
}
