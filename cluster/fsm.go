package cluster

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/raftlvs/raftlvs/fsm"
)

// stateMachine is the raft.FSM around the replicated fsm.State. It only delegates: the
// state decides, this adapter guards it with a lock and tells watchers it changed.
type stateMachine struct {
	log  *slog.Logger
	self raft.ServerID
	// member: a committed configuration held this node (or the one its data dir held at
	// start did). Only then is a configuration without it a removal.
	member atomic.Bool

	mu    sync.RWMutex
	state *fsm.State
	// applied is the raft index of the last command applied to state. raft's own
	// AppliedIndex runs ahead of it: raft counts an entry once it is queued for the FSM.
	applied atomic.Uint64

	watchMu  sync.Mutex
	watchers map[chan struct{}]struct{}
}

var (
	_ raft.FSM                = (*stateMachine)(nil)
	_ raft.ConfigurationStore = (*stateMachine)(nil)
)

func newStateMachine(log *slog.Logger, self string) *stateMachine {
	return &stateMachine{log: log, self: raft.ServerID(self), state: fsm.NewState(), watchers: map[chan struct{}]struct{}{}}
}

// StoreConfiguration is told of every configuration entry as it is applied: the
// committed history of the membership, a joiner's replay of the configurations from
// before it joined included.
// Only a committed configuration counts: one that was appended but not committed may
// still be rolled back (a leader that crashed while adding this node).
func (m *stateMachine) StoreConfiguration(_ uint64, c raft.Configuration) {
	m.noteMember(c.Servers)
}

// noteMember records that servers hold this node, if they do.
func (m *stateMachine) noteMember(servers []raft.Server) {
	if slices.ContainsFunc(servers, func(s raft.Server) bool { return s.ID == m.self }) {
		m.member.Store(true)
	}
}

// Apply applies one committed entry. The response is the state's verdict: nil, or the
// error that rejected the command on every node alike. An entry this node cannot decode
// means it runs older code than the cluster: it stops rather than diverge silently.
func (m *stateMachine) Apply(l *raft.Log) any {
	m.mu.Lock()
	before := m.state.Version()
	err := m.state.Apply(l.Data)
	changed := m.state.Version() != before
	m.applied.Store(l.Index)
	m.mu.Unlock()
	if errors.Is(err, fsm.ErrUnknownCommand) {
		m.log.Error("cannot apply raft log entry: this node does not understand it; upgrade it", "index", l.Index, "term", l.Term, "err", err)
		panic(fmt.Sprintf("raftlvs: raft log entry %d: %v: this node runs older code than the cluster and must not diverge; upgrade it", l.Index, err))
	}
	if changed {
		m.notify()
	}
	return err
}

// Snapshot freezes the state; raft persists it while it goes on applying. Freezing copies
// pointers to the services and real servers, which the state never changes in place:
// 2 ms and 0.9 MB at 10,000 services × 10, where a clone took 47 ms and 38 MB.
func (m *stateMachine) Snapshot() (raft.FSMSnapshot, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return stateSnapshot{state: m.state.Freeze()}, nil
}

// Restore replaces the state with a snapshot, read in full before the swap.
func (m *stateMachine) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	s, err := fsm.ReadSnapshot(rc)
	if err != nil {
		return fmt.Errorf("restore state snapshot: %w", err)
	}
	m.mu.Lock()
	m.state = s
	m.mu.Unlock()
	m.notify()
	return nil
}

// view runs fn with the state under the read lock.
func (m *stateMachine) view(fn func(*fsm.State)) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	fn(m.state)
}

// prepare prepares c against the state. A batch is tried on the state itself and undone
// (no copy of the state), so it takes the write lock: no reader sees it half applied.
func (m *stateMachine) prepare(c fsm.Command) (fsm.Command, error) {
	defer m.lockFor(c)()
	return m.state.Prepare(c)
}

// lockFor takes the lock that preparing c needs and returns its unlock.
func (m *stateMachine) lockFor(c fsm.Command) func() {
	if fsm.NeedsExclusive(c) {
		m.mu.Lock()
		return m.mu.Unlock
	}
	m.mu.RLock()
	return m.mu.RUnlock
}

// dryRun checks c as Apply would take it, under the same lock as prepare.
func (m *stateMachine) dryRun(c fsm.Command) error {
	defer m.lockFor(c)()
	return m.state.DryRun(c)
}

// watch registers a coalescing change channel.
func (m *stateMachine) watch() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	m.watchMu.Lock()
	m.watchers[ch] = struct{}{}
	m.watchMu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			m.watchMu.Lock()
			delete(m.watchers, ch)
			m.watchMu.Unlock()
		})
	}
}

// notify never blocks the apply path: a watcher that has not drained its last signal
// gets no second one, it will read the newest state anyway.
func (m *stateMachine) notify() {
	m.watchMu.Lock()
	defer m.watchMu.Unlock()
	for ch := range m.watchers {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

type stateSnapshot struct{ state *fsm.Frozen }

func (s stateSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.state.WriteSnapshot(sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("persist snapshot %s: %w", sink.ID(), err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("close snapshot %s: %w", sink.ID(), err)
	}
	return nil
}

func (stateSnapshot) Release() {}
