package apiserver

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/raftlvs/raftlvs/cluster"
	"github.com/raftlvs/raftlvs/fsm"
)

var _ Store = (*cluster.Node)(nil)

// fakeStore is a Store backed by a real fsm.State, so validation is the state's own. It is
// the leader or a follower that names leaderAddr as the leader's API.
type fakeStore struct {
	mu         sync.Mutex
	id         string
	state      *fsm.State
	leader     bool
	leaderAddr string
	applied    int // commands committed here
	transfers  []string
	// onTransfer runs after this leader stepped down (another fake takes over).
	onTransfer func()
	notServing bool
	onWait     func()
}

func newFakeStore(id string, leader bool) *fakeStore {
	return &fakeStore{id: id, state: fsm.NewState(), leader: leader}
}

func (f *fakeStore) notLeader(what string) error {
	return fmt.Errorf("%s: %w", what, cluster.ErrNotLeader)
}

func (f *fakeStore) Apply(_ context.Context, c fsm.Command) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.leader {
		return f.notLeader(fmt.Sprintf("apply %T", c))
	}
	if sc, ok := c.(fsm.StageChunk); ok && sc.At.IsZero() {
		sc.At = time.Unix(1e9, 0).UTC() // the leader's clock, as cluster.Node.Apply sets it
		c = sc
	}
	p, err := f.state.Prepare(c)
	if err != nil {
		return err
	}
	// Through the log encoding, as the real node does, so a command that does not survive
	// Encode/Decode fails here too.
	entry, err := fsm.Encode(p)
	if err != nil {
		return err
	}
	if err := f.state.Apply(entry); err != nil {
		return err
	}
	f.applied++
	return nil
}

func (f *fakeStore) ReadIndex(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.leader {
		return f.notLeader("barrier")
	}
	return nil
}

// WaitVersion polls: the fake's state changes only under the test's hand. onWait, if
// set, runs when a read starts waiting (a test replicates then).
func (f *fakeStore) WaitVersion(ctx context.Context, v uint64) error {
	if f.onWait != nil {
		f.onWait()
	}
	for f.version() < v {
		select {
		case <-ctx.Done():
			return fmt.Errorf("state version %d, still short of %d: %v", f.version(), v, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

func (f *fakeStore) DryRun(_ context.Context, c fsm.Command) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.leader {
		return f.notLeader(fmt.Sprintf("dry run %T", c))
	}
	return f.state.DryRun(c)
}

func (f *fakeStore) View(fn func(*fsm.State)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f.state)
}

func (f *fakeStore) Join(_ context.Context, d fsm.Director) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.leader {
		return f.notLeader("join")
	}
	return f.state.Execute(fsm.RegisterDirector{Director: d})
}

func (f *fakeStore) Remove(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.leader {
		return f.notLeader("remove")
	}
	return f.state.Execute(fsm.RemoveDirector{ID: id})
}

func (f *fakeStore) TransferLeadership(_ context.Context, id string) error {
	f.mu.Lock()
	if !f.leader {
		f.mu.Unlock()
		return f.notLeader("transfer leadership")
	}
	f.transfers = append(f.transfers, id)
	f.leader = false
	hook := f.onTransfer
	f.mu.Unlock()
	if hook != nil {
		hook()
	}
	return nil
}

func (f *fakeStore) IsLeader() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leader
}

func (f *fakeStore) LeaderAPIAddr() (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.leaderAddr == "" {
		return "", cluster.ErrNoLeader
	}
	return f.leaderAddr, nil
}

func (f *fakeStore) setLeader(leader bool, addr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.leader, f.leaderAddr = leader, addr
}

func (f *fakeStore) Status() cluster.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := cluster.Status{NodeID: f.id, State: "Follower", Term: 3, Voters: []cluster.Voter{{ID: f.id, RaftAddr: "127.0.0.1:7000", Suffrage: "Voter"}}}
	if f.leader {
		st.State, st.LeaderID = "Leader", f.id
	}
	return st
}

func (f *fakeStore) version() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state.Version()
}

// must applies setup commands directly to the state.
func (f *fakeStore) must(cmds ...fsm.Command) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range cmds {
		p, err := f.state.Prepare(c)
		if err != nil {
			panic(fmt.Sprintf("setup %T: %v", c, err))
		}
		if err := f.state.Execute(p); err != nil {
			panic(fmt.Sprintf("setup %T: %v", c, err))
		}
	}
}

func (f *fakeStore) Serving() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.notServing
}
