package ipvs

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// source is a StateSource over a state the test edits, like package cluster's.
type source struct {
	mu    sync.RWMutex
	st    *fsm.State
	watch chan struct{}
}

func (s *source) View(fn func(*fsm.State)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	fn(s.st)
}

func (s *source) Watch() (<-chan struct{}, func()) { return s.watch, func() {} }

func (s *source) exec(t *testing.T, c fsm.Command) {
	s.mu.Lock()
	p, err := s.st.Prepare(c)
	if err == nil {
		err = s.st.Execute(p)
	}
	s.mu.Unlock()
	if err != nil {
		t.Fatalf("%T: %v", c, err)
	}
	select {
	case s.watch <- struct{}{}:
	default:
	}
}

func TestRunFollowsStateChangesUntilCancelled(t *testing.T) {
	h := newHarness(t)
	h.baseState()
	src := &source{st: h.st, watch: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.r.Run(ctx, src) }()

	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("the initial table", func() bool { return len(h.fake.servicesSnapshot()) == 3 })
	src.exec(t, fsm.RemoveService{Name: "web"})
	waitFor("web to be removed", func() bool { return len(h.fake.servicesSnapshot()) == 2 })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run returned %v after cancel, want nil", err)
	}
	if s := h.r.Stats(); s.Services != 2 {
		t.Errorf("Stats().Services = %d, want 2", s.Services)
	}
}

func TestRepairsTakeAtMostATenthOfTheTime(t *testing.T) {
	h := newHarness(t)
	for _, tt := range []struct{ took, want time.Duration }{
		{0, time.Second},
		{20 * time.Millisecond, time.Second},
		{100 * time.Millisecond, time.Second},
		{700 * time.Millisecond, 7 * time.Second},
		{time.Minute, 30 * time.Second}, // never beyond the sweep interval
	} {
		if got := h.r.repairDelay(tt.took); got != tt.want {
			t.Errorf("after a %v pass: next in %v, want %v", tt.took, got, tt.want)
		}
	}
}
