package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/raftlvs/raftlvs/pki"
	"github.com/raftlvs/raftlvs/pki/pkitest"
)

// BenchmarkRaftTransportTLS compares committed writes on a local three-node raft cluster
// over plain TCP (raft.NewTCPTransport) and over the TLS stream layer, with one writer
// and with 16. The stores are in memory, so no fsync hides the transport's cost; the
// timings are the director defaults. Run:
//
//	go test -run '^$' -bench 'RaftTransportTLS|RaftStreamHandshake' -benchtime 20000x -count 5 ./cluster/
func BenchmarkRaftTransportTLS(b *testing.B) {
	for _, transport := range []string{"tcp", "tls"} {
		for _, writers := range []int{1, 16} {
			b.Run(fmt.Sprintf("transport=%s/writers=%d", transport, writers), func(b *testing.B) {
				benchmarkRaftTransport(b, transport == "tls", writers)
			})
		}
	}
}

func benchmarkRaftTransport(b *testing.B, useTLS bool, writers int) {
	c := pkitest.NewCluster(b, "bench")
	nodes := make([]*tlsRaftNode, 3)
	var conf raft.Configuration
	for i := range nodes {
		id := fmt.Sprintf("d%d", i+1)
		n := &tlsRaftNode{id: id, fsm: &logFSM{}}
		if useTLS {
			n.trans, n.layer, _ = newTLSTransport(b, c.Director(id))
		} else {
			tcp, err := raft.NewTCPTransportWithLogger("127.0.0.1:0", nil, transportPool, transportTimeout, hclog.NewNullLogger())
			if err != nil {
				b.Fatal(err)
			}
			n.trans = tcp
		}
		nodes[i] = n
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: n.trans.LocalAddr()})
	}
	for _, n := range nodes {
		rc := raft.DefaultConfig()
		rc.LocalID = raft.ServerID(n.id)
		rc.HeartbeatTimeout = DefaultHeartbeatTimeout
		rc.ElectionTimeout = DefaultElectionTimeout
		rc.LeaderLeaseTimeout = DefaultLeaderLeaseTimeout
		rc.CommitTimeout = DefaultCommitTimeout
		rc.Logger = hclog.NewNullLogger()
		store, snaps := raft.NewInmemStore(), raft.NewInmemSnapshotStore()
		if err := raft.BootstrapCluster(rc, store, store, snaps, n.trans, conf); err != nil {
			b.Fatal(err)
		}
		r, err := raft.NewRaft(rc, n.fsm, store, store, snaps, n.trans)
		if err != nil {
			b.Fatal(err)
		}
		n.raft = r
	}
	defer func() {
		for _, n := range nodes {
			n.raft.Shutdown().Error()
			n.trans.Close()
		}
	}()
	leader := tlsLeader(b, nodes)
	if err := leader.raft.Barrier(tlsBound).Error(); err != nil {
		b.Fatal(err)
	}

	// A shared, loaded machine may see an election mid-run: writers then move to the
	// new leader and retry, and the run reports how often that happened.
	var mu sync.Mutex
	current, elections := leader, 0
	leaderFor := func(failed *tlsRaftNode) *tlsRaftNode {
		mu.Lock()
		defer mu.Unlock()
		if current == failed {
			current = tlsLeader(b, nodes)
			elections++
		}
		return current
	}

	latencies := make([][]time.Duration, writers)
	entry := make([]byte, 64) // about a SetHealth command
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := leaderFor(nil)
			for i := w; i < b.N; i += writers {
				t0 := time.Now()
				err := l.raft.Apply(entry, tlsBound).Error()
				for tries := 0; err != nil && tries < 10; tries++ {
					if !errors.Is(err, raft.ErrLeadershipLost) && !errors.Is(err, raft.ErrNotLeader) {
						break
					}
					l = leaderFor(l)
					err = l.raft.Apply(entry, tlsBound).Error()
				}
				if err != nil {
					b.Errorf("write %d: %v", i, err)
					return
				}
				latencies[w] = append(latencies[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(latencies...)
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	pct := func(p float64) float64 {
		return float64(all[min(len(all)-1, int(float64(len(all))*p))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "writes/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(elections), "elections")
}

// BenchmarkRaftStreamHandshake is the cost of opening one Raft stream over loopback: a
// TCP connect, and a connect plus a mutual TLS 1.3 handshake (ECDSA P-256 both ends,
// each side verifying the other's chain and role). raft pools its streams, so this is
// paid per stream, not per RPC.
func BenchmarkRaftStreamHandshake(b *testing.B) {
	c := pkitest.NewCluster(b, "bench")
	b.Run("transport=tcp", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				conn.Close()
			}
		}()
		for b.Loop() {
			conn, err := net.DialTimeout("tcp", ln.Addr().String(), tlsBound)
			if err != nil {
				b.Fatal(err)
			}
			conn.Read(make([]byte, 1))
			conn.Close()
		}
	})
	b.Run("transport=tls", func(b *testing.B) {
		server, _ := benchStreamLayer(b, c.Director("d1"))
		client, _ := benchStreamLayer(b, c.Director("d2"))
		go func() {
			for {
				conn, err := server.Accept()
				if err != nil {
					return
				}
				conn.Close()
			}
		}()
		for b.Loop() {
			conn, err := client.Dial(raft.ServerAddress(server.Addr().String()), tlsBound)
			if err != nil {
				b.Fatal(err)
			}
			// Read until the server hangs up: its side of the handshake (verifying
			// this client) is then done too.
			conn.Read(make([]byte, 1))
			conn.Close()
		}
	})
}

func benchStreamLayer(b *testing.B, src pki.Source) (*TLSStreamLayer, net.Listener) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s, err := NewTLSStreamLayer(TLSStreamConfig{Listener: ln, TLS: src, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s, ln
}
