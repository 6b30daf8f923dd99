// Package cluster is a director's membership in the Raft cluster that replicates the fsm
// state: storage, transport, bootstrap, writes on the leader, membership changes and the
// supervised leader loop. See DESIGN.md.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlvs/raftlvs/fsm"
)

var (
	// ErrNotLeader: the operation must run on the leader. The write was not logged, so
	// the caller may forward it to LeaderAPIAddr and retry.
	ErrNotLeader = errors.New("not the raft leader")
	// ErrNoLeader: the cluster has no known leader right now (an election is under way,
	// or quorum is lost).
	ErrNoLeader = errors.New("no known raft leader")
	// ErrLeadershipLost: leadership was lost after the write was logged and before it
	// was known to be committed. It may or may not take effect; read before retrying.
	ErrLeadershipLost = errors.New("leadership lost while committing; the write may or may not take effect")
	// ErrClosed: the node is shut down.
	ErrClosed = errors.New("cluster node closed")
)

const (
	logCacheEntries   = 16
	snapshotsRetained = 2
	transportPool     = 3
	transportTimeout  = 10 * time.Second
	// noPipelining turns raft's pipelined replication off (one AppendEntries in flight
	// per follower). Its sender can park for good on a full pipeline once the decoder
	// has stopped (a follower that answered false — a full disk — or a newer term):
	// that follower is never replicated to again, and Shutdown waits for ever
	// (hashicorp/raft#612; the chaos harness met it as a director SIGTERM could not
	// stop). raft's own notes (#541) find pipelining of little benefit with batching.
	noPipelining = 1
	// defaultOpTimeout bounds a write, barrier or membership change whose ctx has no
	// deadline: raft would otherwise wait for ever to enqueue it, and so would its caller.
	defaultOpTimeout = 10 * time.Second
)

// Node is one director's membership in the Raft cluster.
type Node struct {
	cfg   Config
	log   *slog.Logger
	raft  *raft.Raft
	store *diskStore
	trans *leaderCommitTransport
	layer *TLSStreamLayer // nil in plain mode
	sm    *stateMachine
	self  fsm.Director // this node's entry in the Director table

	readyTerm    atomic.Uint64 // the term whose first barrier this leader applied
	contacts     contacts      // the peers and leaders raft's observations told of
	applyLatency latencyHistogram
	transfers    atomic.Uint64 // planned leadership transfers this node started

	notifyCh    chan bool
	handoverCh  chan handover
	shutdownCh  chan struct{}
	monitorDone chan struct{}
	leadOnce    sync.Once // Lead starts the monitor, or Close marks that none will run
	duties      []Duty
	// background runs watchReadiness and watchRaft; Close waits for them before it shuts
	// raft down and closes the store they read.
	background sync.WaitGroup

	ready     chan struct{}
	readyOnce sync.Once
	done      chan struct{}
	doneOnce  sync.Once

	closeOnce sync.Once
	closeErr  error
}

// Open starts this node: it recovers from DataDir if there is state there, or bootstraps
// a one-node cluster when cfg.Bootstrap is set and there is none.
func Open(cfg Config) (*Node, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger.With("node", cfg.NodeID)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	n := &Node{
		cfg:         cfg,
		log:         log,
		sm:          newStateMachine(log, cfg.NodeID),
		notifyCh:    make(chan bool, 16),
		handoverCh:  make(chan handover),
		shutdownCh:  make(chan struct{}),
		monitorDone: make(chan struct{}),
		ready:       make(chan struct{}),
		done:        make(chan struct{}),
	}
	n.contacts.init()
	if err := n.start(); err != nil {
		return nil, err
	}
	in, known := n.inConfiguration()
	if in {
		n.sm.member.Store(true) // a restarted member
	}
	if known && !in {
		// Exiting would only loop under a supervisor: stay idle, never ready. A joiner
		// that stopped while catching up looks the same: it goes on when replicated to.
		n.log.Warn("this node is not in the raft configuration of its data dir (removed, or stopped while joining): it stays idle until the leader replicates to it")
	}
	obs, observer := n.registerObserver()
	n.background.Add(2)
	go n.watchReadiness()
	go n.watchRaft(obs, observer)
	return n, nil
}

// start opens the stores and the transport and starts raft, undoing what it opened if a
// later step fails.
func (n *Node) start() (err error) {
	cfg := n.cfg
	hlog := newHCLogAdapter(n.log, "raft")
	if err := checkIdentity(cfg.DataDir, cfg.NodeID); err != nil {
		return err
	}
	logStore, err := openLogStore(cfg.DataDir)
	if err != nil {
		return err
	}
	n.store = &diskStore{BoltStore: logStore, dir: cfg.DataDir, log: n.log}
	defer func() {
		if err != nil {
			n.store.Close()
		}
	}()
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, snapshotsRetained, hlog.Named("snapshot"))
	if err != nil {
		return fmt.Errorf("open snapshot store: %w", err)
	}
	if err := checkSnapshots(cfg.DataDir, snaps, n.log); err != nil {
		return err
	}
	var advertise net.Addr
	if cfg.RaftAdvertise != "" {
		if advertise, err = net.ResolveTCPAddr("tcp", cfg.RaftAdvertise); err != nil {
			return &ConfigError{Field: "RaftAdvertise", Reason: err.Error(), Err: err}
		}
	}
	tcp, err := n.openTransport(advertise, hlog)
	if err != nil {
		// A wildcard bind without RaftAdvertise is the usual cause: peers cannot dial 0.0.0.0.
		return fmt.Errorf("raft transport on %s (advertise %q): %w", cfg.RaftBind, cfg.RaftAdvertise, err)
	}
	trans := newLeaderCommitTransport(tcp, cfg.ElectionTimeout)
	defer func() {
		if err != nil {
			trans.Close()
		}
	}()
	n.trans = trans
	n.self = fsm.Director{
		ID:         cfg.NodeID,
		RaftAddr:   string(trans.LocalAddr()),
		APIAddr:    cfg.APIAddr,
		GossipAddr: cfg.GossipAddr,
		Witness:    cfg.Witness,
	}

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.TrailingLogs = cfg.TrailingLogs
	rc.NotifyCh = n.notifyCh
	rc.Logger = hlog
	// go-metrics' copies of per-peer figures with the peer id in the metric name; the
	// director's metrics come from RaftStats, not from go-metrics.
	rc.NoLegacyTelemetry = true
	if err := raft.ValidateConfig(rc); err != nil {
		// validate checks the same rules with our field names; this is a backstop.
		return &ConfigError{Field: "raft", Reason: err.Error(), Err: err}
	}

	existing, err := raft.HasExistingState(n.store, n.store, snaps)
	if err != nil {
		return fmt.Errorf("inspect raft state in %s: %w", cfg.DataDir, err)
	}
	switch {
	case existing:
		n.log.Info("recovering raft state", "data_dir", cfg.DataDir)
	case cfg.Bootstrap:
		if n.cfg.ClusterID == "" {
			n.cfg.ClusterID = newClusterID()
		}
		n.log.Info("bootstrapping a new cluster", "cluster_id", n.cfg.ClusterID)
		conf := raft.Configuration{Servers: []raft.Server{{
			Suffrage: raft.Voter, ID: rc.LocalID, Address: trans.LocalAddr(),
		}}}
		if err := raft.BootstrapCluster(rc, n.store, n.store, snaps, trans, conf); err != nil {
			return fmt.Errorf("bootstrap cluster: %w", err)
		}
	default:
		n.log.Info("no raft state; waiting to be joined by the leader")
	}

	// A small cache in front of bolt: without it raft reads each new entry back from bolt
	// and decodes it again for every follower it replicates to (a restore's 1.6 MB
	// chunks: 1.05 s → 0.80 s for 10,000 × 10). 16 entries bound what it holds.
	logs, err := raft.NewLogCache(logCacheEntries, n.store)
	if err != nil {
		return fmt.Errorf("raft log cache: %w", err)
	}
	n.raft, err = raft.NewRaft(rc, n.sm, logs, n.store, snaps, trans)
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	return nil
}

func newClusterID() string {
	b := make([]byte, 8)
	rand.Read(b) // never fails (crypto/rand documents it)
	return hex.EncodeToString(b)
}

// ID is this node's id.
func (n *Node) ID() string { return n.cfg.NodeID }

// Self is this node's entry for the Director table, with the Raft address it advertises.
func (n *Node) Self() fsm.Director { return n.self }

// View runs fn with the current state under a read lock. fn must not keep the pointer
// nor call back into the Node's write methods.
func (n *Node) View(fn func(*fsm.State)) { n.sm.view(fn) }

// Watch returns a channel signalled (coalesced, buffer 1) after every applied entry that
// changed the state and after a snapshot restore, and a func that stops the signals. A
// consumer reads the newest state with View after each signal, and what changed since it
// last looked with fsm.State.ChangesSince and the cursor it keeps (everything, after a
// restore: the state is then another one).
func (n *Node) Watch() (<-chan struct{}, func()) { return n.sm.watch() }

// IsLeader reports whether this node is the Raft leader now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the current leader's id and Raft address, empty if none is known.
func (n *Node) Leader() (id, raftAddr string) {
	addr, sid := n.raft.LeaderWithID()
	return string(sid), string(addr)
}

// LeaderAPIAddr is the HTTP API address of the current leader, where followers forward
// writes. It fails with ErrNoLeader when no leader is known or the leader has not yet
// recorded its entry.
func (n *Node) LeaderAPIAddr() (string, error) {
	id, _ := n.Leader()
	if id == "" {
		return "", ErrNoLeader
	}
	var d fsm.Director
	var ok bool
	n.View(func(s *fsm.State) { d, ok = s.Director(id) })
	if !ok {
		return "", fmt.Errorf("leader %s has no director entry yet: %w", id, ErrNoLeader)
	}
	return d.APIAddr, nil
}

// Barrier waits until every entry logged before it is applied to this node's state.
// Leader only. Without a ctx deadline it gives up after defaultOpTimeout.
func (n *Node) Barrier(ctx context.Context) error {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	return n.wait(ctx, "barrier", n.raft.Barrier(timeoutOf(ctx)))
}

// ReadIndex returns once this leader's state holds every write acknowledged before the
// call, and logs nothing (Consul's consistent read): a write this leader acknowledged,
// its state applied before the answer; one an earlier leader did, the first barrier of
// this term applied; VerifyLeader (a heartbeat round to a quorum) rules out a newer
// leader. Before that first barrier it is one. Leader only.
func (n *Node) ReadIndex(ctx context.Context) error {
	if !n.IsLeader() {
		return fmt.Errorf("read index: %w", ErrNotLeader)
	}
	term := n.raft.CurrentTerm()
	if n.readyTerm.Load() != term {
		return n.Barrier(ctx)
	}
	if err := n.VerifyLeader(ctx); err != nil {
		return err
	}
	if n.raft.CurrentTerm() != term {
		return fmt.Errorf("read index: a new term began: %w", ErrNotLeader)
	}
	return nil
}

// Apply prepares c against the current state, logs it and waits until it is committed
// and applied. It returns the state's verdict: a validation error (errors.Is-able against
// the fsm error classes) comes back just as from a direct State.Execute, including one
// that only a racing write made true. Off the leader it fails with ErrNotLeader. A nil
// return means a quorum has the entry on disk. Without a ctx deadline it gives up after
// defaultOpTimeout (outcome unknown, like any ctx expiry).
func (n *Node) Apply(ctx context.Context, c fsm.Command) error {
	if !n.IsLeader() {
		return fmt.Errorf("apply %T: %w", c, ErrNotLeader)
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	if sc, ok := c.(fsm.StageChunk); ok && sc.At.IsZero() {
		// The fsm has no clock: the leader's time in the entry is what expires an
		// abandoned transaction, alike on every node.
		sc.At = time.Now()
		c = sc
	}
	prepared, err := n.sm.prepare(c)
	if err != nil {
		return err
	}
	entry, err := fsm.Encode(prepared)
	if err != nil {
		return err
	}
	start := time.Now()
	f := n.raft.Apply(entry, timeoutOf(ctx))
	if err := n.wait(ctx, fmt.Sprintf("apply %T", c), f); err != nil {
		return err
	}
	n.applyLatency.observe(time.Since(start))
	if resp, _ := f.Response().(error); resp != nil {
		return resp
	}
	return nil
}

// wait waits for a raft future, bounded by ctx, and classifies its error.
func (n *Node) wait(ctx context.Context, what string, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		if err = classify(what, err); err != nil && !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrLeadershipLost) && !errors.Is(err, ErrClosed) {
			// raft says only "unable to store logs" (as text) when its own log store failed:
			// the store knows whether it was for want of space.
			if full := n.store.full(); full != nil {
				return fmt.Errorf("%s: %w", what, full)
			}
		}
		return err
	case <-ctx.Done():
		return fmt.Errorf("%s: gave up waiting, outcome unknown: %w", what, ctx.Err())
	}
}

func classify(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader):
		// Refused before it reached the log: safe to forward.
		return fmt.Errorf("%s: %w", what, ErrNotLeader)
	case errors.Is(err, raft.ErrLeadershipTransferInProgress):
		// Refused too; raft's own error stays in the chain for TransferLeadership.
		return fmt.Errorf("%s: %w: %w", what, err, ErrNotLeader)
	case errors.Is(err, raft.ErrLeadershipLost):
		return fmt.Errorf("%s: %w", what, ErrLeadershipLost)
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%s: %w", what, ErrClosed)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// withDefaultTimeout bounds a ctx without deadline by defaultOpTimeout.
func withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, defaultOpTimeout)
}

// timeoutOf turns a ctx deadline into raft's enqueue timeout. Callers bound their ctx
// with withDefaultTimeout; a ctx without deadline still gets defaultOpTimeout, never
// raft's 0 (wait for ever).
func timeoutOf(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl), time.Millisecond)
	}
	return defaultOpTimeout
}

// Close stops the leader loop (waiting for its duties to return), shuts raft down and
// closes the stores; Done is closed by then. It does not leave the cluster: a closed node
// is a crashed node to its peers until it restarts or is removed. Close is idempotent.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.leadOnce.Do(func() { close(n.monitorDone) }) // Lead was never called
		close(n.shutdownCh)
		<-n.monitorDone
		n.background.Wait()
		var errs []error
		if err := n.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("shut down raft: %w", err))
		}
		n.markDone()
		if err := n.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close raft log store: %w", err))
		}
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}
