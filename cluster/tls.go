package cluster

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/raftlvs/raftlvs/fsm"
	"github.com/raftlvs/raftlvs/pki"
)

// openTransport opens the Raft transport: mutual TLS between directors when Config.TLS
// is set (the default of the daemon), plain TCP otherwise (--insecure, and the tests
// of this package that do not concern TLS).
func (n *Node) openTransport(advertise net.Addr, hlog hclog.Logger) (*raft.NetworkTransport, error) {
	cfg := n.cfg
	if cfg.TLS == nil {
		return raft.NewTCPTransportWithConfig(cfg.RaftBind, advertise, &raft.NetworkTransportConfig{
			MaxPool: transportPool, Timeout: transportTimeout, Logger: hlog.Named("transport"), MaxRPCsInFlight: noPipelining,
		})
	}
	ln, err := net.Listen("tcp", cfg.RaftBind)
	if err != nil {
		return nil, err
	}
	layer, err := NewTLSStreamLayer(TLSStreamConfig{
		Listener: ln, Advertise: advertise, TLS: cfg.TLS,
		Revoked: n.revoked, PeerID: n.peerID, Logger: n.log.With("component", "raft-tls"),
	})
	if err != nil {
		ln.Close()
		return nil, err
	}
	n.layer = layer
	// raft's dial timeout (transportTimeout) bounds the connect and the handshake.
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: layer, MaxPool: transportPool, Timeout: transportTimeout, Logger: hlog.Named("transport"),
		MaxRPCsInFlight: noPipelining,
	}), nil
}

// revoked refuses certificates the replicated state lists as revoked: a removed
// director's, which would otherwise stay good until it expires.
func (n *Node) revoked(c *x509.Certificate) bool {
	var r bool
	n.View(func(s *fsm.State) { r = s.CertificateRevoked(c.SerialNumber.Text(16)) })
	return r
}

// peerID is the director id the replicated state records at a Raft address: raft's
// Dial knows only the address, and a director certificate for another id there is
// refused. (The Director table, not raft's configuration: reading the configuration
// goes through raft's main loop, which may be waiting on this very dial.)
func (n *Node) peerID(addr raft.ServerAddress) (string, bool) {
	var id string
	n.View(func(s *fsm.State) {
		for _, d := range s.Directors() {
			if d.RaftAddr == string(addr) {
				id = d.ID
			}
		}
	})
	return id, id != ""
}

// RestartStreams makes every Raft connection handshake again with the current TLS
// material. The daemon calls it when its pki.Reloader loaded new material: a TLS
// connection keeps its certificates for as long as it lives. Without TLS it does nothing.
func (n *Node) RestartStreams() {
	if n.layer != nil {
		n.layer.RestartStreams(n.trans)
	}
}

// proveRaftPeer checks, before a voter is added, that the joiner's Raft address answers:
// with TLS, that a director certificate for exactly d.ID is presented there, speaking the
// Raft protocol (a bare listener, an API port, another node or an agent is refused); in
// plain mode, that a TCP connection opens.
func (n *Node) proveRaftPeer(ctx context.Context, d fsm.Director) error {
	if n.cfg.TLS == nil {
		if err := dialRaft(ctx, d.RaftAddr); err != nil {
			return fmt.Errorf("raft address %s is not reachable from the leader: %w: %w", d.RaftAddr, err, fsm.ErrInvalid)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, DefaultHandshakeTimeout)
	defer cancel()
	if _, err := DialRaftPeer(ctx, d.RaftAddr, n.cfg.TLS, d.ID); err != nil {
		return fmt.Errorf("%w: %w", err, fsm.ErrInvalid)
	}
	return nil
}

// TLS is the node's TLS material, nil in plain mode.
func (n *Node) TLS() pki.Source { return n.cfg.TLS }
