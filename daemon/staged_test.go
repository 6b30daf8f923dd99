package daemon

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

type stagedStore struct {
	mu sync.Mutex
	st *fsm.State
}

func (s *stagedStore) View(fn func(*fsm.State)) { s.mu.Lock(); defer s.mu.Unlock(); fn(s.st) }

func (s *stagedStore) Apply(_ context.Context, c fsm.Command) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.st.Prepare(c)
	if err == nil {
		err = s.st.Execute(p)
	}
	return err
}

func TestTheLeaderAbortsAStagedRestoreNobodyFinished(t *testing.T) {
	staged := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	store := &stagedStore{st: fsm.NewState()}
	chunk := fsm.StageChunk{Tx: "restore-1", Seq: 0, At: staged, Commands: []fsm.Command{
		fsm.AddService{Service: fsm.Service{Protocol: fsm.TCP, VIP: netip.MustParseAddr("192.0.2.10"), Port: 80}}}}
	if err := store.Apply(context.Background(), chunk); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	now := staged.Add(time.Minute)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		abortAbandoned(store, clock, 5*time.Millisecond, slog.New(slog.DiscardHandler))(ctx, func() {})
	}()
	defer func() { cancel(); <-done }()
	count := func() (n int) { store.View(func(s *fsm.State) { n = len(s.Staged()) }); return n }
	time.Sleep(50 * time.Millisecond) // ten sweeps: a live transaction stays
	if count() != 1 {
		t.Fatal("a transaction within its time to live was aborted")
	}
	mu.Lock()
	now = staged.Add(fsm.StagedTTL + time.Minute)
	mu.Unlock()
	for deadline := time.Now().Add(10 * time.Second); count() != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the abandoned transaction was never aborted")
		}
	}
}
