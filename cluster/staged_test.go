package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// restoreOf is a restore of services × 3 real servers, as the CLI sends it.
func restoreOf(first, services int) []fsm.Command {
	var cmds []fsm.Command
	for i := first; i < first+services; i++ {
		name := fmt.Sprintf("r%d", i)
		cmds = append(cmds, fsm.AddService{Service: fsm.Service{Name: name, Protocol: fsm.TCP, VIP: netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)}), Port: 80}})
		for j := range 3 {
			cmds = append(cmds, fsm.AddRealServer{RealServer: fsm.RealServer{Service: name, Addr: netip.AddrFrom4([4]byte{10, 8, byte(j), 1}), Weight: 1}})
		}
	}
	return cmds
}

// applyRetrying writes c through whichever node leads, riding out leadership changes as
// the HTTP layer's forwarding does. After an attempt whose outcome is unknown, an error
// that tookEffect accepts means the earlier attempt went through. Safe to call from any
// goroutine.
func applyRetrying(ctx context.Context, tc *testCluster, c fsm.Command, tookEffect func(error) bool) error {
	uncertain := false
	for {
		var err error = ErrNoLeader
		for _, n := range tc.open() {
			if n.IsLeader() {
				err = n.Apply(ctx, c)
				break
			}
		}
		if uncertain && tookEffect(err) {
			return nil
		}
		uncertain = uncertain || errors.Is(err, ErrLeadershipLost)
		if !retriable(err) && !errors.Is(err, ErrNoLeader) || ctx.Err() != nil {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func alreadyStaged(err error) bool { return errors.Is(err, fsm.ErrExists) }

// gone: a commit or abort whose transaction is no longer staged went through.
func gone(err error) bool { return errors.Is(err, fsm.ErrNotFound) }

func TestStagedRestoreThroughRaftIsAllOrNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tc := newTestCluster(t)
	_, d2 := tc.pair(ctx)

	// Four chunks in flight at once: raft may log them in any order.
	chunks := fsm.SplitForStaging(restoreOf(0, 40), 40)
	var wg sync.WaitGroup
	errs := make([]error, len(chunks))
	for seq, c := range chunks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[seq] = applyRetrying(ctx, tc, fsm.StageChunk{Tx: "restore", Seq: seq, Commands: c}, alreadyStaged)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	tc.leader().View(func(s *fsm.State) {
		if staged := s.Staged(); len(s.Services()) != 0 || len(staged) != 1 || staged[0].Commands != 160 || staged[0].Last.IsZero() {
			t.Fatalf("before the commit: %d services, staged %+v", len(s.Services()), staged)
		}
	})
	if err := applyRetrying(ctx, tc, fsm.CommitStaged{Tx: "restore", Chunks: len(chunks)}, gone); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the follower to apply the commit", func() bool {
		var n int
		d2.View(func(s *fsm.State) { n = len(s.AllRealServers()) })
		return n == 120
	})

	// A transaction that fails at the commit changes nothing, anywhere, and stays staged
	// until aborted.
	bad := fsm.SplitForStaging(restoreOf(38, 4), 8) // r38 and r39 exist
	for seq, c := range bad {
		if err := applyRetrying(ctx, tc, fsm.StageChunk{Tx: "again", Seq: seq, Commands: c}, alreadyStaged); err != nil {
			t.Fatal(err)
		}
	}
	never := func(error) bool { return false } // a failed commit changes nothing: retrying is safe
	if err := applyRetrying(ctx, tc, fsm.CommitStaged{Tx: "again", Chunks: len(bad)}, never); !errors.Is(err, fsm.ErrExists) {
		t.Fatalf("commit of existing services: %v, want fsm.ErrExists", err)
	}
	if err := applyRetrying(ctx, tc, fsm.AbortStaged{Tx: "again"}, gone); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the follower to apply the abort", func() bool {
		var staged, services int
		d2.View(func(s *fsm.State) { staged, services = len(s.Staged()), len(s.Services()) })
		return staged == 0 && services == 40
	})
}

// TestSnapshotPersistsBesideApply: raft writes a snapshot while it goes on applying; what
// it writes is the state when it was taken, whatever the entries applied meanwhile change
// (run with -race: nothing the snapshot reads is written).
func TestSnapshotPersistsBesideApply(t *testing.T) {
	m := newStateMachine(discardLogger(), "d1")
	index := uint64(0)
	apply := func(c fsm.Command) {
		t.Helper()
		index++
		if resp := m.Apply(logEntry(t, m, index, c)); resp != nil {
			t.Fatalf("apply %T: %v", c, resp)
		}
	}
	apply(fsm.AddService{Service: webService()})
	apply(fsm.AddRealServer{RealServer: webServer("198.51.100.1")})
	apply(fsm.StageChunk{Tx: "tx", At: time.Now(), Commands: restoreOf(0, 2)})
	var want bytes.Buffer
	m.view(func(s *fsm.State) {
		if err := s.WriteSnapshot(&want); err != nil {
			t.Fatal(err)
		}
	})
	snap, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	done := make(chan error, 1)
	go func() { done <- snap.Persist(&sink) }()
	key := fsm.RSKey{Service: "web", Addr: netip.MustParseAddr("198.51.100.1"), Port: 80}
	apply(fsm.SetHealth{Key: key, Health: fsm.HealthDown, Reason: "HTTP 503"})
	apply(fsm.EditRealServer{RealServer: webServer("198.51.100.1")})
	apply(fsm.CommitStaged{Tx: "tx", Chunks: 1})
	apply(fsm.RemoveService{Name: "web"})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sink.Bytes(), want.Bytes()) {
		t.Fatalf("snapshot written beside Apply:\n%s\nwant the state when it was taken:\n%s", sink.Bytes(), want.Bytes())
	}

	// A consumer's cursor into the state before a restore reads everything after it.
	var cur fsm.Cursor
	m.view(func(s *fsm.State) { _, cur = s.ChangesSince(cur) })
	if err := m.Restore(io.NopCloser(&sink)); err != nil {
		t.Fatal(err)
	}
	m.view(func(s *fsm.State) {
		if cs, _ := s.ChangesSince(cur); !cs.All {
			t.Fatalf("after a restore: %+v, want everything", cs)
		}
		if len(s.Staged()) != 1 {
			t.Fatal("the staged transaction did not survive the snapshot")
		}
	})
}
