package daemon

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/cluster/gossip"
	"github.com/raftlvs/raftlvs/fsm"
)

type fakePool struct {
	mu      sync.Mutex
	members []gossip.Member
	joined  chan []string
}

func (p *fakePool) Members() []gossip.Member {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.members)
}

func (p *fakePool) Join(addrs []string) (int, error) { p.joined <- addrs; return len(addrs), nil }

type fakeState struct {
	st      *fsm.State
	changes chan struct{}
}

func (s *fakeState) ID() string                       { return "d1" }
func (s *fakeState) View(fn func(*fsm.State))         { fn(s.st) }
func (s *fakeState) Watch() (<-chan struct{}, func()) { return s.changes, func() {} }

func TestDirectorsTheStateListsAreJoinedWhenThePoolLacksThem(t *testing.T) {
	st := fsm.NewState()
	for _, d := range []fsm.Director{
		{ID: "d1", RaftAddr: "10.0.0.1:7000", APIAddr: "10.0.0.1:7080", GossipAddr: "10.0.0.1:7946"},
		{ID: "d2", RaftAddr: "10.0.0.2:7000", APIAddr: "10.0.0.2:7080", GossipAddr: "10.0.0.2:7946"},
		{ID: "d3", RaftAddr: "10.0.0.3:7000", APIAddr: "10.0.0.3:7080", GossipAddr: "10.0.0.3:7946"},
	} {
		if err := st.Execute(fsm.RegisterDirector{Director: d}); err != nil {
			t.Fatal(err)
		}
	}
	pool := &fakePool{joined: make(chan []string, 4), members: []gossip.Member{
		{Name: "d1", State: gossip.StateAlive}, {Name: "d2", State: gossip.StateAlive}, {Name: "d3", State: gossip.StateDead},
	}}
	state := &fakeState{st: st, changes: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); keepDirectorsInGossip(ctx, pool, state, slog.New(slog.DiscardHandler)) }()
	defer func() { cancel(); <-done }()

	// Itself and the live d2 are left alone; the dead d3 is joined again.
	select {
	case got := <-pool.joined:
		if !slices.Equal(got, []string{"10.0.0.3:7946"}) {
			t.Fatalf("joined %v, want d3 only", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the missing director was never joined")
	}
	// Once the pool sees it, a state change joins no one.
	pool.mu.Lock()
	pool.members[2].State = gossip.StateAlive
	pool.mu.Unlock()
	state.changes <- struct{}{}
	state.changes <- struct{}{} // taken only after the pass of the first
	select {
	case got := <-pool.joined:
		t.Fatalf("joined %v with every director alive", got)
	default:
	}
}
