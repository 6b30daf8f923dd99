package cluster

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
	"github.com/raftlvs/raftlvs/pki"
)

// Timing defaults for a LAN trio of directors, the "default" profile (timing.go,
// DESIGN.md): a crash moves the VIPs in about 0.6-0.9 s, and a stall shorter than the
// 150 ms lease costs no election.
const (
	DefaultHeartbeatTimeout   = 300 * time.Millisecond
	DefaultElectionTimeout    = 300 * time.Millisecond
	DefaultLeaderLeaseTimeout = 150 * time.Millisecond
	// DefaultCommitTimeout bounds how long an idle leader waits to tell the followers
	// what is committed, and so how soon a write reaches their kernels: 10 ms gives a
	// write programmed on every director within 37 ms (p99, BenchmarkWriteToProgrammed),
	// where raft's 50 ms gives 104 ms; the cost is an empty AppendEntries every 10–20 ms
	// to each follower of an idle cluster.
	DefaultCommitTimeout = 10 * time.Millisecond
	// The state is a few kilobytes, so snapshots are cheap; keeping the log short makes
	// restarts quick, and the trailing logs let a briefly absent follower catch up from
	// the log instead of a snapshot install.
	DefaultSnapshotThreshold = 1024
	DefaultSnapshotInterval  = 30 * time.Second
	DefaultTrailingLogs      = 1024
)

// ErrBadConfig classifies every configuration error returned by Open.
var ErrBadConfig = errors.New("bad cluster config")

// ConfigError names the Config field that is wrong. It wraps ErrBadConfig.
type ConfigError struct {
	Field  string
	Reason string
	Err    error // the underlying cause, if any
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("%v: %s: %s", ErrBadConfig, e.Field, e.Reason)
}

func (e *ConfigError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrBadConfig}
	}
	return []error{ErrBadConfig, e.Err}
}

// Config is one director's membership in the Raft cluster.
type Config struct {
	NodeID  string // unique and stable across restarts
	DataDir string // raft.db and snapshots

	RaftBind      string // host:port to listen on; port 0 picks one
	RaftAdvertise string // host:port peers dial; "" is the bound address
	APIAddr       string // this node's HTTP API, recorded for forwarding to the leader
	GossipAddr    string // optional, recorded too

	// Bootstrap forms a new cluster with this node as its only voter. It is ignored when
	// DataDir already holds Raft state, so leaving it set across restarts is safe.
	Bootstrap bool
	// ClusterID names the cluster; recorded by the first leader if the state has none.
	// A bootstrap without one generates one.
	ClusterID string
	// Witness marks this director, in its Director entry, as a Raft-only voter: a
	// planned leadership transfer never picks it (see TransferLeadership).
	Witness bool
	// Eligible, if set, says whether a director may be handed leadership by a planned
	// transfer (its tracked checks pass, as its gossip metadata says); nil: every one.
	Eligible func(id string) bool
	// TLS, if set, is this director's TLS material (a *pki.Reloader): the Raft transport
	// is then mutual TLS between directors only, and a joiner must prove its Raft address
	// with its own director certificate. Nil is plain TCP (--insecure).
	TLS pki.Source

	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	SnapshotThreshold  uint64
	SnapshotInterval   time.Duration
	TrailingLogs       uint64

	// OnEvent, if set, is told of leader changes and, as leader, of voters whose
	// heartbeats fail or resume. It is called from one goroutine and must not block.
	OnEvent func(Event)

	Logger *slog.Logger
}

// withDefaults fills in every zero field that has a default.
func (c Config) withDefaults() Config {
	c.HeartbeatTimeout = cmp.Or(c.HeartbeatTimeout, DefaultHeartbeatTimeout)
	c.ElectionTimeout = cmp.Or(c.ElectionTimeout, DefaultElectionTimeout)
	c.LeaderLeaseTimeout = cmp.Or(c.LeaderLeaseTimeout, DefaultLeaderLeaseTimeout)
	c.CommitTimeout = cmp.Or(c.CommitTimeout, DefaultCommitTimeout)
	c.SnapshotThreshold = cmp.Or(c.SnapshotThreshold, DefaultSnapshotThreshold)
	c.SnapshotInterval = cmp.Or(c.SnapshotInterval, DefaultSnapshotInterval)
	c.TrailingLogs = cmp.Or(c.TrailingLogs, DefaultTrailingLogs)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// validate checks a config that withDefaults filled in, naming the wrong field. The
// timing rules are raft's (config.go ValidateConfig), checked here to name our fields.
func (c Config) validate() error {
	bad := func(field, format string, args ...any) error {
		return &ConfigError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	if c.DataDir == "" {
		return bad("DataDir", "required")
	}
	// Slices, not maps, here and below: the same bad config must always name the same
	// field.
	for _, a := range []struct {
		field, addr string
		optional    bool
	}{
		{"RaftBind", c.RaftBind, false}, {"RaftAdvertise", c.RaftAdvertise, true},
		{"APIAddr", c.APIAddr, false}, {"GossipAddr", c.GossipAddr, true},
	} {
		if a.optional && a.addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			return bad(a.field, "%q is not host:port", a.addr)
		}
	}
	// The id is checked as the fsm will check this node's director entry, so a node never
	// starts with an id its own registration would be refused for. (The addresses were
	// checked above.)
	d := fsm.Director{ID: c.NodeID, RaftAddr: c.RaftBind, APIAddr: c.APIAddr, GossipAddr: c.GossipAddr}
	if err := fsm.NewState().Check(fsm.RegisterDirector{Director: d}); err != nil {
		return &ConfigError{Field: "NodeID", Reason: err.Error(), Err: err}
	}
	for _, t := range []struct {
		field string
		d     time.Duration
	}{
		{"HeartbeatTimeout", c.HeartbeatTimeout}, {"ElectionTimeout", c.ElectionTimeout},
		{"LeaderLeaseTimeout", c.LeaderLeaseTimeout}, {"SnapshotInterval", c.SnapshotInterval},
	} {
		if t.d < 5*time.Millisecond {
			return bad(t.field, "%v is below raft's minimum of 5ms", t.d)
		}
	}
	if c.CommitTimeout < time.Millisecond {
		return bad("CommitTimeout", "%v is below raft's minimum of 1ms", c.CommitTimeout)
	}
	if c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		return bad("LeaderLeaseTimeout", "%v exceeds HeartbeatTimeout %v: a partitioned leader would keep leading after its followers elected another", c.LeaderLeaseTimeout, c.HeartbeatTimeout)
	}
	if c.ElectionTimeout < c.HeartbeatTimeout {
		return bad("ElectionTimeout", "%v is below HeartbeatTimeout %v", c.ElectionTimeout, c.HeartbeatTimeout)
	}
	return nil
}
