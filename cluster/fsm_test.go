package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/raftlvs/raftlvs/fsm"
)

func webService() fsm.Service {
	return fsm.Service{Name: "web", Protocol: fsm.TCP, VIP: netip.MustParseAddr("192.0.2.10"), Port: 80}
}

func webServer(addr string) fsm.RealServer {
	return fsm.RealServer{Service: "web", Addr: netip.MustParseAddr(addr), Port: 80, Weight: 1, Origin: fsm.OriginOperator}
}

// logEntry prepares c against the machine's current state, as the leader does, and
// wraps it in a raft log entry.
func logEntry(t testing.TB, m *stateMachine, index uint64, c fsm.Command) *raft.Log {
	t.Helper()
	var prepared fsm.Command
	var err error
	m.view(func(s *fsm.State) { prepared, err = s.Prepare(c) })
	if err != nil {
		t.Fatalf("prepare %T: %v", c, err)
	}
	data, err := fsm.Encode(prepared)
	if err != nil {
		t.Fatal(err)
	}
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func signalled(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestStateMachineApplyReturnsStateVerdictAndSignalsWatchers(t *testing.T) {
	m := newStateMachine(discardLogger(), "d1")
	watch, cancel := m.watch()
	defer cancel()

	if resp := m.Apply(logEntry(t, m, 1, fsm.AddService{Service: webService()})); resp != nil {
		t.Fatalf("accepted command: response %v, want nil", resp)
	}
	if !signalled(watch) {
		t.Fatal("no watch signal after an entry that changed the state")
	}
	m.view(func(s *fsm.State) {
		if _, ok := s.Service("web"); !ok {
			t.Fatal("service web not in state after apply")
		}
	})

	// The same command again is valid on its own but no longer fits the state: every
	// node rejects it alike, and the rejection is the response.
	again, err := fsm.Encode(fsm.AddService{Service: func() fsm.Service { s := webService(); fsm.NormalizeService(&s); return s }()})
	if err != nil {
		t.Fatal(err)
	}
	resp := m.Apply(&raft.Log{Index: 2, Type: raft.LogCommand, Data: again})
	err, _ = resp.(error)
	if !errors.Is(err, fsm.ErrExists) {
		t.Fatalf("duplicate service: response %v, want an error wrapping fsm.ErrExists", resp)
	}
	if signalled(watch) {
		t.Fatal("watch signalled after a rejected entry that changed nothing")
	}
}

func TestStateMachineWatchCoalescesAndStopsAfterCancel(t *testing.T) {
	m := newStateMachine(discardLogger(), "d1")
	watch, cancel := m.watch()
	m.Apply(logEntry(t, m, 1, fsm.AddService{Service: webService()}))
	m.Apply(logEntry(t, m, 2, fsm.AddRealServer{RealServer: webServer("198.51.100.1")}))
	if !signalled(watch) {
		t.Fatal("no signal after two changes")
	}
	if signalled(watch) {
		t.Fatal("two signals for two unread changes; want them coalesced into one")
	}
	cancel()
	cancel() // idempotent
	m.Apply(logEntry(t, m, 3, fsm.AddRealServer{RealServer: webServer("198.51.100.2")}))
	if signalled(watch) {
		t.Fatal("signal after cancel")
	}
}

func TestStateMachineUnreadableEntryPanics(t *testing.T) {
	for _, tc := range []struct {
		name  string
		entry []byte
	}{
		{"unknown command type", []byte{0xfe, 1, '{', '}'}},
		{"unknown body version", []byte{byte(fsm.TypeAddService), 0xfe, '{', '}'}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newStateMachine(discardLogger(), "d1")
			defer func() {
				r := recover()
				if r == nil {
					t.Fatal("no panic: the node would silently diverge")
				}
				if msg := fmt.Sprint(r); !strings.Contains(msg, "entry 7") {
					t.Fatalf("panic %q does not name the entry", msg)
				}
			}()
			m.Apply(&raft.Log{Index: 7, Type: raft.LogCommand, Data: tc.entry})
		})
	}
}

func TestStateMachineMalformedEntryIsRejectedNotFatal(t *testing.T) {
	// A known type with a body that does not decode is a rejection every node makes
	// alike, not a sign of older code.
	m := newStateMachine(discardLogger(), "d1")
	resp := m.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: []byte{byte(fsm.TypeAddService), 1, '{'}})
	if err, _ := resp.(error); !errors.Is(err, fsm.ErrInvalid) {
		t.Fatalf("response %v, want an error wrapping fsm.ErrInvalid", resp)
	}
}

// memSink is a raft.SnapshotSink in memory.
type memSink struct {
	bytes.Buffer
	closed, cancelled bool
	failWrites        bool
}

func (s *memSink) Write(p []byte) (int, error) {
	if s.failWrites {
		return 0, errors.New("disk full")
	}
	return s.Buffer.Write(p)
}
func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Close() error  { s.closed = true; return nil }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }

func TestStateMachineSnapshotRestoresAnEqualState(t *testing.T) {
	src := newStateMachine(discardLogger(), "d1")
	cmds := []fsm.Command{
		fsm.SetClusterID{ID: "lab"},
		fsm.AddService{Service: webService()},
		fsm.AddRealServer{RealServer: webServer("198.51.100.1")},
		fsm.AddRealServer{RealServer: webServer("198.51.100.2")},
		fsm.SetHealth{Key: fsm.RSKey{Service: "web", Addr: netip.MustParseAddr("198.51.100.2"), Port: 80}, Health: fsm.HealthDown},
		fsm.RegisterDirector{Director: fsm.Director{ID: "d1", RaftAddr: "127.0.0.1:7000", APIAddr: "127.0.0.1:8000"}},
	}
	for i, c := range cmds {
		if resp := src.Apply(logEntry(t, src, uint64(i+1), c)); resp != nil {
			t.Fatalf("apply %T: %v", c, resp)
		}
	}
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// A change after the snapshot was taken must not leak into it.
	src.Apply(logEntry(t, src, 99, fsm.RemoveService{Name: "web"}))

	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	if !sink.closed || sink.cancelled {
		t.Fatalf("sink closed=%v cancelled=%v, want closed only", sink.closed, sink.cancelled)
	}

	dst := newStateMachine(discardLogger(), "d1")
	watch, cancel := dst.watch()
	defer cancel()
	if err := dst.Restore(io.NopCloser(&sink)); err != nil {
		t.Fatal(err)
	}
	if !signalled(watch) {
		t.Fatal("no watch signal after restore")
	}

	replayed := fsm.NewState()
	for _, c := range cmds {
		if err := replayed.Execute(mustPrepare(t, replayed, c)); err != nil {
			t.Fatal(err)
		}
	}
	dst.view(func(s *fsm.State) {
		if !s.Equal(replayed) {
			t.Fatal("restored state differs from the state the same log gives")
		}
	})
}

func mustPrepare(t *testing.T, s *fsm.State, c fsm.Command) fsm.Command {
	t.Helper()
	p, err := s.Prepare(c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSnapshotPersistCancelsSinkOnWriteError(t *testing.T) {
	m := newStateMachine(discardLogger(), "d1")
	snap, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := memSink{failWrites: true}
	if err := snap.Persist(&sink); err == nil {
		t.Fatal("persist succeeded on a failing sink")
	}
	if !sink.cancelled || sink.closed {
		t.Fatalf("sink closed=%v cancelled=%v, want cancelled only", sink.closed, sink.cancelled)
	}
}

func TestStateMachineRestoreRejectsGarbageAndKeepsState(t *testing.T) {
	m := newStateMachine(discardLogger(), "d1")
	m.Apply(logEntry(t, m, 1, fsm.AddService{Service: webService()}))
	if err := m.Restore(io.NopCloser(strings.NewReader("not a snapshot"))); err == nil {
		t.Fatal("restore of garbage succeeded")
	}
	m.view(func(s *fsm.State) {
		if _, ok := s.Service("web"); !ok {
			t.Fatal("failed restore replaced the state")
		}
	})
}
