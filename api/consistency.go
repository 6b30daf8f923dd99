package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Read-your-writes. Every director answers reads from its own replica, which may lag
// the leader (by up to a heartbeat, or more while it catches up). So:
//
//   - every answer carries the answering director's state version (VersionHeader) and
//     its cluster id (ClusterHeader); a write's answer the version after the write;
//   - a client remembers the highest version it saw of its cluster and sends it with its
//     reads (MinVersionHeader): a director that has not applied that much waits for it,
//     up to ReadWait, then answers 503 and the client asks the next one. A client never
//     reads older than what it wrote or read before;
//   - a client that has seen nothing (a new CLI process) but must see every write made
//     so far, anyone's, first asks the leader (POST /v1/barrier: the leader applies
//     everything committed, and answers its version), then reads at that version.
const (
	VersionHeader    = "X-Raftlvs-Version"
	ClusterHeader    = "X-Raftlvs-Cluster"
	MinVersionHeader = "X-Raftlvs-Min-Version"
)

// ReadWait bounds how long a director waits for its replica to reach the version a read
// asks for, before it answers 503.
const ReadWait = 5 * time.Second

// ConfirmTimeout bounds the barrier of a consistent read: without a leader for that
// long, the read fails (ErrUnconfirmed) rather than wait out the call's whole timeout.
const ConfirmTimeout = 5 * time.Second

// ErrUnconfirmed means a consistent read could not learn the leader's state version
// (no leader, no quorum): nothing was read. A stale read (Consistent false) may still
// answer from a director's replica.
var ErrUnconfirmed = errors.New("could not confirm the latest state with the leader")

// BarrierResult is the answer of POST /v1/barrier: the leader's state version once it
// has applied everything committed before the request.
type BarrierResult struct {
	ClusterID string `json:"cluster_id"`
	Version   uint64 `json:"version"`
}

// versionClock is the highest state version a client has seen, of one cluster.
type versionClock struct {
	mu      sync.Mutex
	cluster string
	version uint64
}

// observe takes note of an answer's version. An answer from another cluster (rebuilt
// under the same addresses) starts over from its version: the old one means nothing.
func (v *versionClock) observe(cluster string, version uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch {
	case cluster != "" && v.cluster != "" && cluster != v.cluster:
		v.cluster, v.version = cluster, version
	case version > v.version:
		v.version = version
		if cluster != "" {
			v.cluster = cluster
		}
	}
}

func (v *versionClock) get() (string, uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.cluster, v.version
}

// SeenVersion is the highest state version this client has seen in an answer (0: none).
func (c *Client) SeenVersion() uint64 {
	_, v := c.seen.get()
	return v
}

// ObserveVersion makes this client read at version v or later from now on, as if it had
// seen it: another client's writes, for one that reads what the other wrote.
func (c *Client) ObserveVersion(v uint64) { c.seen.observe("", v) }

// stampRead asks a read for at least the version this client has seen.
func (c *Client) stampRead(h http.Header) {
	cluster, v := c.seen.get()
	if v == 0 {
		return
	}
	h.Set(MinVersionHeader, strconv.FormatUint(v, 10))
	if cluster != "" {
		h.Set(ClusterHeader, cluster)
	}
}

// observeAnswer takes note of the version an answer carries.
func (c *Client) observeAnswer(h http.Header) {
	v, err := strconv.ParseUint(h.Get(VersionHeader), 10, 64)
	if err != nil {
		return // an older director, or a proxy's answer
	}
	c.seen.observe(h.Get(ClusterHeader), v)
}

// Barrier asks the leader (through any director) for its state version once it has
// applied everything committed so far, and makes this client read at that version.
func (c *Client) Barrier(ctx context.Context) (*BarrierResult, error) {
	return call[BarrierResult](ctx, c, http.MethodPost, barrierPath, nil)
}

const barrierPath = "/v1/barrier"

// confirm is the barrier before a consistent read, bounded by ConfirmTimeout.
func (c *Client) confirm(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, ConfirmTimeout)
	defer cancel()
	var res BarrierResult
	if err := c.exchange(ctx, http.MethodPost, barrierPath, nil, "", &res); err != nil {
		return fmt.Errorf("%w: %w", ErrUnconfirmed, err)
	}
	c.seen.observe(res.ClusterID, res.Version)
	return nil
}
