package cluster

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/raftlvs/raftlvs/pki"
	"github.com/raftlvs/raftlvs/pki/pkitest"
)

// logFSM is the smallest raft FSM: it keeps what it applied.
type logFSM struct {
	mu      sync.Mutex
	entries []string
}

func (f *logFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries = append(f.entries, string(l.Data))
	return nil
}

func (f *logFSM) applied() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.entries)
}

func (f *logFSM) Snapshot() (raft.FSMSnapshot, error) {
	return nil, errors.New("no snapshots in this test")
}
func (f *logFSM) Restore(io.ReadCloser) error { return errors.New("no snapshots in this test") }

// tlsRaftNode is a raft node with in-memory stores on the TLS stream layer.
type tlsRaftNode struct {
	id    string
	raft  *raft.Raft
	trans *raft.NetworkTransport
	layer *TLSStreamLayer
	seen  handshakes
	fsm   *logFSM
}

// newTLSTransport is a NetworkTransport over a TLS stream layer on a loopback port.
func newTLSTransport(t testing.TB, src pki.Source) (*raft.NetworkTransport, *TLSStreamLayer, handshakes) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	seen := make(handshakes, 256)
	layer, err := NewTLSStreamLayer(TLSStreamConfig{Listener: ln, TLS: src, OnHandshake: seen.report, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: layer, MaxPool: transportPool, Timeout: 2 * time.Second, Logger: hclog.NewNullLogger(),
	})
	return trans, layer, seen
}

// startTLSRaft starts one raft node per bundle, all bootstrapped with the same voter
// set, as a test cluster (raft's own test timings, a little slower for -race).
func startTLSRaft(t testing.TB, bundles ...*pki.Bundle) []*tlsRaftNode {
	t.Helper()
	nodes := make([]*tlsRaftNode, len(bundles))
	var conf raft.Configuration
	for i, b := range bundles {
		trans, layer, seen := newTLSTransport(t, b)
		nodes[i] = &tlsRaftNode{id: b.Identity.ID, trans: trans, layer: layer, seen: seen, fsm: &logFSM{}}
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(b.Identity.ID), Address: trans.LocalAddr()})
	}
	for _, n := range nodes {
		rc := raft.DefaultConfig()
		rc.LocalID = raft.ServerID(n.id)
		rc.HeartbeatTimeout = 200 * time.Millisecond
		rc.ElectionTimeout = 200 * time.Millisecond
		rc.LeaderLeaseTimeout = 100 * time.Millisecond
		rc.CommitTimeout = 5 * time.Millisecond
		rc.Logger = hclog.NewNullLogger()
		store := raft.NewInmemStore()
		snaps := raft.NewInmemSnapshotStore()
		if err := raft.BootstrapCluster(rc, store, store, snaps, n.trans, conf); err != nil {
			t.Fatal(err)
		}
		r, err := raft.NewRaft(rc, n.fsm, store, store, snaps, n.trans)
		if err != nil {
			t.Fatal(err)
		}
		n.raft = r
	}
	t.Cleanup(func() {
		for _, n := range nodes {
			n.raft.Shutdown().Error()
			n.trans.Close()
		}
	})
	return nodes
}

// tlsLeader waits for a leader among nodes.
func tlsLeader(t testing.TB, nodes []*tlsRaftNode) *tlsRaftNode {
	t.Helper()
	var leader *tlsRaftNode
	waitUntil(t, "a leader over TLS", func() bool {
		for _, n := range nodes {
			if n.raft.State() == raft.Leader {
				leader = n
				return true
			}
		}
		return false
	})
	return leader
}

// tlsApply commits data through whichever node leads, retrying across elections.
func tlsApply(t testing.TB, nodes []*tlsRaftNode, data string) {
	t.Helper()
	deadline := time.Now().Add(tlsBound)
	for {
		err := tlsLeader(t, nodes).raft.Apply([]byte(data), time.Second).Error()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("apply %q: %v", data, err)
		}
	}
}

// allApplied waits until every node applied want, in order. An entry may appear twice:
// tlsApply retries a write whose outcome an election left unknown.
func allApplied(t testing.TB, nodes []*tlsRaftNode, want []string) {
	t.Helper()
	for _, n := range nodes {
		waitUntil(t, n.id+" applies every entry", func() bool { return slices.Equal(firstOccurrences(n.fsm.applied()), want) })
	}
}

func firstOccurrences(entries []string) []string {
	var out []string
	for _, e := range entries {
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out
}

func TestRaftOverTLSCommitsAndARogueWithoutADirectorCertificateCannotAppend(t *testing.T) {
	c := pkitest.NewCluster(t, "c0ffee")
	nodes := startTLSRaft(t, c.Director("d1"), c.Director("d2"), c.Director("d3"))
	var want []string
	for i := range 5 {
		want = append(want, fmt.Sprintf("entry %d", i))
		tlsApply(t, nodes, want[i])
	}
	allApplied(t, nodes, want)

	leader := tlsLeader(t, nodes)
	var follower *tlsRaftNode
	for _, n := range nodes {
		if n != leader {
			follower = n
			break
		}
	}
	other := pkitest.NewCluster(t, "c0ffee")
	for _, rogue := range []struct {
		name string
		cert *pki.Bundle
		want error
	}{
		{"agent certificate", c.Agent("rogue"), pki.ErrWrongRole},
		{"operator certificate", c.Operator("rogue", pki.AccessAdmin), pki.ErrWrongRole},
		{"director of another CA", alsoTrusting(other.Director("rogue"), c), pki.ErrUnknownCA},
	} {
		// The rogue runs raft's own transport over TLS with its certificate: a stream
		// layer that dials like ours, with what it has.
		stream := rogueStream(t, rogue.cert)
		trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
			Stream: stream, MaxPool: 1, Timeout: 2 * time.Second, Logger: hclog.NewNullLogger(),
		})
		req := &raft.AppendEntriesRequest{
			RPCHeader: raft.RPCHeader{ID: []byte("rogue"), Addr: []byte(trans.LocalAddr())},
			Term:      1000, PrevLogEntry: 0, PrevLogTerm: 0, LeaderCommitIndex: 1000,
			Entries: []*raft.Log{{Index: 1, Term: 1000, Type: raft.LogCommand, Data: []byte("rogue entry")}},
		}
		var resp raft.AppendEntriesResponse
		err := trans.AppendEntries(raft.ServerID(follower.id), follower.trans.LocalAddr(), req, &resp)
		trans.Close()
		if err == nil {
			t.Fatalf("%s: the follower answered the rogue's AppendEntries: %+v", rogue.name, resp)
		}
		// The follower's report of this connection (under load, the other nodes' dials
		// may fail too).
		fromRogue := func(hs StreamHandshake) bool { return hs.Inbound && stream.dialed(hs.Remote) }
		if hs := follower.seen.next(t, rogue.name, fromRogue); !errors.Is(hs.Err, rogue.want) {
			t.Errorf("%s: the follower refused it with %v, want %q", rogue.name, hs.Err, rogue.want)
		}
		if term, _ := strconv.Atoi(follower.raft.Stats()["term"]); term >= 1000 {
			t.Fatalf("%s: the follower took the rogue's term %d", rogue.name, term)
		}
	}

	// The cluster still commits, and none of it is the rogue's.
	want = append(want, "after the rogues")
	tlsApply(t, nodes, want[len(want)-1])
	allApplied(t, nodes, want)
}

// rogueStream is a raft stream layer that dials with any certificate and listens on a
// plain loopback port (no one dials it in the test).
func rogueStream(t testing.TB, b *pki.Bundle) *rogueLayer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return &rogueLayer{Listener: ln, b: b}
}

type rogueLayer struct {
	net.Listener
	b     *pki.Bundle
	mu    sync.Mutex
	local []string // the local addresses of its dials: the remote ends the target sees
}

func (r *rogueLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := tlsDialer(timeout, raftClientConfig(r.b, pki.Require(pki.RoleDirector)))
	conn, err := d.Dial("tcp", string(addr))
	if err == nil {
		r.mu.Lock()
		r.local = append(r.local, conn.LocalAddr().String())
		r.mu.Unlock()
	}
	return conn, err
}

func (r *rogueLayer) dialed(remote string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.local, remote)
}

func TestRaftOverTLSKeepsCommittingWhenEveryNodeRestartsItsStreams(t *testing.T) {
	c := pkitest.NewCluster(t, "c0ffee")
	nodes := startTLSRaft(t, c.Director("d1"), c.Director("d2"), c.Director("d3"))
	tlsApply(t, nodes, "before")
	allApplied(t, nodes, []string{"before"})
	for _, n := range nodes {
		n.layer.RestartStreams(n.trans)
	}
	tlsApply(t, nodes, "after")
	allApplied(t, nodes, []string{"before", "after"})
}
