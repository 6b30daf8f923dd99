package cluster

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// leaderCommitTransport is raft's TCP transport plus one observation: the highest commit
// index a leader has announced to this node in an AppendEntries request. raft keeps that
// number to itself (a follower's own CommitIndex is capped by the log it has received so
// far, and starts at 0 after a restart), yet it is what readiness needs: the point the
// cluster had reached when this node first heard from it. Every other method is the
// embedded transport's, so raft's optional interfaces (pre-vote, close) still apply.
type leaderCommitTransport struct {
	*raft.NetworkTransport
	rpcs     chan raft.RPC
	stop     chan struct{}
	stopOnce sync.Once
	commit   atomic.Uint64

	// answered is when each peer last answered an AppendEntries of this node's (the
	// leader's heartbeats, every HeartbeatTimeout/10): raft keeps its followers' last
	// contact to itself, and reports a failed heartbeat only once the call fails, which
	// for a peer behind a pulled cable is the transport's timeout later.
	answeredMu sync.Mutex
	answered   map[raft.ServerID]peerAnswer

	// timeoutNowLimit bounds a TimeoutNow call (the election timeout).
	timeoutNowLimit time.Duration
}

// peerAnswer is a peer's last answer to an AppendEntries: when, and the last index of
// its log then (a heartbeat's answer carries it too), which tells how far it lags.
type peerAnswer struct {
	at      time.Time
	lastLog uint64
}

func newLeaderCommitTransport(nt *raft.NetworkTransport, timeoutNowLimit time.Duration) *leaderCommitTransport {
	t := &leaderCommitTransport{NetworkTransport: nt, rpcs: make(chan raft.RPC), stop: make(chan struct{}),
		answered: map[raft.ServerID]peerAnswer{}, timeoutNowLimit: timeoutNowLimit}
	go t.relay()
	return t
}

// Consumer is where raft reads incoming RPCs: the relay's channel.
func (t *leaderCommitTransport) Consumer() <-chan raft.RPC { return t.rpcs }

// leaderCommit is the highest commit index announced by a leader so far, 0 if none.
// Any leader's commit index, even a deposed one's, is a committed index, so it is a safe
// lower bound of what the cluster has committed.
func (t *leaderCommitTransport) leaderCommit() uint64 { return t.commit.Load() }

// relay passes every RPC on to raft unchanged, noting the commit index of AppendEntries
// on the way. Heartbeats take raft's fast path around the consumer, and carry no commit
// index anyway.
func (t *leaderCommitTransport) relay() {
	in := t.NetworkTransport.Consumer()
	for {
		select {
		case rpc := <-in:
			if ae, ok := rpc.Command.(*raft.AppendEntriesRequest); ok {
				t.noteCommit(ae.LeaderCommitIndex)
			}
			select {
			case t.rpcs <- rpc:
			case <-t.stop:
				return
			}
		case <-t.stop:
			return
		}
	}
}

func (t *leaderCommitTransport) noteCommit(index uint64) {
	for {
		cur := t.commit.Load()
		if index <= cur || t.commit.CompareAndSwap(cur, index) {
			return
		}
	}
}

// AppendEntries is the transport's, noting when the peer answered.
func (t *leaderCommitTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	err := t.NetworkTransport.AppendEntries(id, target, args, resp)
	if err == nil {
		a := peerAnswer{at: time.Now(), lastLog: resp.LastLog}
		t.answeredMu.Lock()
		t.answered[id] = a
		t.answeredMu.Unlock()
	}
	return err
}

// lastAnswer is peer id's last answer to an AppendEntries of this node's; zero if never.
func (t *leaderCommitTransport) lastAnswer(id raft.ServerID) peerAnswer {
	t.answeredMu.Lock()
	defer t.answeredMu.Unlock()
	return t.answered[id]
}

// TimeoutNow is the transport's, bounded by timeoutNowLimit. raft keeps a leadership
// transfer in progress, refusing every write, until this call returns; a target that
// stopped answering (frozen, or cut off after it caught up) would hold it for the
// transport's whole timeout (hashicorp/raft#696). A late answer is dropped: the target
// may still start its election, which is what it was asked to do.
func (t *leaderCommitTransport) TimeoutNow(id raft.ServerID, target raft.ServerAddress, args *raft.TimeoutNowRequest, resp *raft.TimeoutNowResponse) error {
	type answer struct {
		resp raft.TimeoutNowResponse
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		var a answer
		a.err = t.NetworkTransport.TimeoutNow(id, target, args, &a.resp)
		done <- a
	}()
	select {
	case a := <-done:
		*resp = a.resp
		return a.err
	case <-time.After(t.timeoutNowLimit):
		return fmt.Errorf("TimeoutNow to %s at %s: no answer within %v", id, target, t.timeoutNowLimit)
	}
}

// Close stops the relay and closes the transport; raft calls it on shutdown. An RPC the
// relay drops here is answered by the transport's own shutdown.
func (t *leaderCommitTransport) Close() error {
	t.stopOnce.Do(func() { close(t.stop) })
	return t.NetworkTransport.Close()
}
