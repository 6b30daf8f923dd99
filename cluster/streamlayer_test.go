package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/raftlvs/raftlvs/pki"
	"github.com/raftlvs/raftlvs/pki/pkitest"
)

// tlsBound caps every wait of the stream-layer tests (an election on a starved -race
// machine included); nothing asserts how long anything takes.
const tlsBound = 20 * time.Second

// handshakes collects a stream layer's OnHandshake reports.
type handshakes chan StreamHandshake

func (h handshakes) report(hs StreamHandshake) {
	select {
	case h <- hs:
	default: // a test that does not read them must not block the layer
	}
}

// next waits for the next report that matches.
func (h handshakes) next(t *testing.T, what string, match func(StreamHandshake) bool) StreamHandshake {
	t.Helper()
	deadline := time.After(tlsBound)
	for {
		select {
		case hs := <-h:
			if match(hs) {
				return hs
			}
		case <-deadline:
			t.Fatalf("no handshake report for %s", what)
		}
	}
}

// waitUntil polls cond until it holds, for at most tlsBound.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(tlsBound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", tlsBound, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func inbound(hs StreamHandshake) bool  { return hs.Inbound }
func outbound(hs StreamHandshake) bool { return !hs.Inbound }

// newTestStreamLayer is a TLS stream layer on a loopback port with src's material.
func newTestStreamLayer(t *testing.T, src pki.Source) (*TLSStreamLayer, handshakes) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	seen := make(handshakes, 64)
	s, err := NewTLSStreamLayer(TLSStreamConfig{
		Listener: ln, TLS: src, OnHandshake: seen.report, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, seen
}

// alsoTrusting is b with c's CA among its roots: a client from another CA that trusts
// the server, so that the server is the side that refuses.
func alsoTrusting(b *pki.Bundle, c *pkitest.Cluster) *pki.Bundle {
	nb := *b
	nb.Roots = b.Roots.Clone()
	nb.Roots.AddCert(c.CA.Cert)
	nb.CAs = append(append([]*x509.Certificate(nil), b.CAs...), c.CA.Cert)
	return &nb
}

// dialAndRead opens a TLS connection with cfg and reads once: under TLS 1.3 a client
// learns that the server refused its certificate only when it reads.
func dialAndRead(t *testing.T, addr string, cfg *tls.Config) error {
	t.Helper()
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: tlsBound}, Config: cfg}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(tlsBound))
	_, err = c.Read(make([]byte, 1))
	return err
}

func TestTLSStreamLayerAcceptsOnlyDirectorsOfItsCluster(t *testing.T) {
	c := pkitest.NewCluster(t, "c0ffee")
	other := pkitest.NewCluster(t, "c0ffee")
	layer, seen := newTestStreamLayer(t, c.Director("d1"))
	addr := layer.Addr().String()

	for _, tc := range []struct {
		name   string
		client *pki.Bundle
		want   error
	}{
		{"no certificate", c.Trust(), pki.ErrNoCertificate},
		{"another CA's director", alsoTrusting(other.Director("d2"), c), pki.ErrUnknownCA},
		{"expired director", c.ExpiredDirector("d2"), pki.ErrCertExpired},
		{"agent", c.Agent("a1"), pki.ErrWrongRole},
		{"operator", c.Operator("alice", pki.AccessAdmin), pki.ErrWrongRole},
	} {
		err := dialAndRead(t, addr, raftClientConfig(tc.client, pki.Require(pki.RoleDirector)))
		if err == nil {
			t.Errorf("%s: the connection was not refused", tc.name)
		}
		hs := seen.next(t, tc.name, inbound)
		if !errors.Is(hs.Err, tc.want) {
			t.Errorf("%s: refused with %v, want %q", tc.name, hs.Err, tc.want)
		}
	}

	// Not raft at all: an HTTPS client (ALPN h2) with a director certificate, and
	// plain bytes.
	https := pki.ClientConfig(c.Director("d2"), pki.Require(pki.RoleDirector))
	https.NextProtos = []string{"h2", "http/1.1"}
	if err := dialAndRead(t, addr, https); err == nil {
		t.Error("an HTTPS client was not refused")
	}
	if hs := seen.next(t, "https client", inbound); hs.Err == nil {
		t.Error("an HTTPS client was accepted")
	}
	plain, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	plain.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	plain.SetDeadline(time.Now().Add(tlsBound))
	io.Copy(io.Discard, plain) // the layer hangs up
	plain.Close()
	var notTLS tls.RecordHeaderError
	if hs := seen.next(t, "plain bytes", inbound); !errors.As(hs.Err, &notTLS) {
		t.Errorf("plain bytes: %v", hs.Err)
	}

	// A director of the cluster gets through, to raft's Accept.
	accepted := make(chan net.Conn, 1)
	go func() {
		conn, err := layer.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- conn
	}()
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: tlsBound}, Config: raftClientConfig(c.Director("d2"), pki.Require(pki.RoleDirector))}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("director refused: %v", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte{42}); err != nil {
		t.Fatal(err)
	}
	var server net.Conn
	select {
	case server = <-accepted:
	case <-time.After(tlsBound):
		t.Fatal("Accept did not return the director's connection")
	}
	defer server.Close()
	server.SetDeadline(time.Now().Add(tlsBound))
	b := make([]byte, 1)
	if _, err := io.ReadFull(server, b); err != nil || b[0] != 42 {
		t.Errorf("read %v, %v", b, err)
	}
	if hs := seen.next(t, "director", inbound); hs.Err != nil || hs.Peer.ID != "d2" || hs.Peer.Role != pki.RoleDirector {
		t.Errorf("director handshake %+v", hs)
	}
}

// plainTLSServer serves TLS with b's certificate on a loopback port, speaking RaftALPN
// or the given protocols, and closes each connection after the handshake.
func plainTLSServer(t *testing.T, b *pki.Bundle, protos ...string) string {
	t.Helper()
	cfg := pki.ServerConfig(b, pki.Require())
	cfg.NextProtos = protos
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(tlsBound))
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	return ln.Addr().String()
}

func TestTLSStreamDialRefusesAServerThatIsNotTheExpectedDirector(t *testing.T) {
	c := pkitest.NewCluster(t, "c0ffee")
	layer, seen := newTestStreamLayer(t, c.Director("d1"))

	agent := plainTLSServer(t, c.Agent("a1"), RaftALPN)
	_, err := layer.Dial(raft.ServerAddress(agent), tlsBound)
	if !errors.Is(err, pki.ErrWrongRole) {
		t.Errorf("dial an agent: %v", err)
	}
	if hs := seen.next(t, "dial agent", outbound); !errors.Is(hs.Err, pki.ErrWrongRole) {
		t.Errorf("report %+v", hs)
	}
	api := plainTLSServer(t, c.Director("d2"), "h2", "http/1.1")
	_, err = layer.Dial(raft.ServerAddress(api), tlsBound)
	if !errors.Is(err, ErrNotRaftEndpoint) {
		t.Errorf("dial an API port: %v", err)
	}

	// With PeerID, a director at an address the configuration gives to another node.
	d2 := plainTLSServer(t, c.Director("d2"), RaftALPN)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	bound, err := NewTLSStreamLayer(TLSStreamConfig{
		Listener: ln, TLS: c.Director("d1"), Logger: slog.New(slog.DiscardHandler),
		PeerID: func(a raft.ServerAddress) (string, bool) { return "d3", a == raft.ServerAddress(d2) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer bound.Close()
	_, err = bound.Dial(raft.ServerAddress(d2), tlsBound)
	if !errors.Is(err, pki.ErrWrongID) {
		t.Errorf("dial d2 where d3 should be: %v", err)
	}
	if conn, err := layer.Dial(raft.ServerAddress(d2), tlsBound); err != nil {
		t.Errorf("dial d2 without PeerID: %v", err)
	} else {
		conn.Close()
	}
}

func TestNewTLSStreamLayerNeedsADirectorCertificateAndAnAdvertisableAddress(t *testing.T) {
	c := pkitest.NewCluster(t, "c0ffee")
	for name, tc := range map[string]struct {
		bind string
		src  pki.Source
	}{
		"agent certificate": {"127.0.0.1:0", c.Agent("a1")},
		"no certificate":    {"127.0.0.1:0", c.Trust()},
		"wildcard address":  {"0.0.0.0:0", c.Director("d1")},
	} {
		ln, err := net.Listen("tcp", tc.bind)
		if err != nil {
			t.Fatal(err)
		}
		_, err = NewTLSStreamLayer(TLSStreamConfig{Listener: ln, TLS: tc.src})
		ln.Close()
		if !errors.Is(err, ErrBadConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestDialRaftPeerProvesTheJoinerListensWithItsOwnCertificate(t *testing.T) {
	c := pkitest.NewCluster(t, "c0ffee")
	leader := c.Director("d1")
	joiner, _ := newTestStreamLayer(t, c.Director("d2"))
	go func() { // raft's accept loop, in short: take the proof's connection and let it go
		for {
			conn, err := joiner.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), tlsBound)
	defer cancel()

	id, err := DialRaftPeer(ctx, joiner.Addr().String(), leader, "d2")
	if err != nil || id.ID != "d2" || id.Role != pki.RoleDirector {
		t.Fatalf("the joiner's proof: %+v, %v", id, err)
	}

	// A raft transport without TLS, as a director started without certificates runs.
	plain, err := raft.NewTCPTransportWithLogger("127.0.0.1:0", nil, 1, tlsBound, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	closedPort := func() string {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		defer ln.Close()
		return ln.Addr().String()
	}()

	for _, tc := range []struct {
		name, addr, id string
		also           error
		says           string
	}{
		{"another node's id", joiner.Addr().String(), "d3", pki.ErrWrongID, "want d3"},
		{"plain raft transport", string(plain.LocalAddr()), "d2", nil, "did not complete a TLS handshake"},
		{"nothing listening", closedPort, "d2", nil, "cannot connect"},
		{"an API port", plainTLSServer(t, c.Director("d2"), "h2", "http/1.1"), "d2", ErrNotRaftEndpoint, ""},
		{"an agent", plainTLSServer(t, c.Agent("d2"), RaftALPN), "d2", pki.ErrWrongRole, ""},
	} {
		_, err := DialRaftPeer(ctx, tc.addr, leader, tc.id)
		if !errors.Is(err, ErrPeerProof) || (tc.also != nil && !errors.Is(err, tc.also)) {
			t.Errorf("%s: %v, want %q and %v", tc.name, err, ErrPeerProof, tc.also)
			continue
		}
		if !strings.Contains(err.Error(), tc.says) || !strings.Contains(err.Error(), tc.addr) {
			t.Errorf("%s: %q does not say %q at %s", tc.name, err, tc.says, tc.addr)
		}
	}

	// A listener that accepts and says nothing: the proof is bounded by ctx.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	short, cancelShort := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancelShort()
	_, err = DialRaftPeer(short, silent.Addr().String(), leader, "d2")
	if !errors.Is(err, ErrPeerProof) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("silent listener: %v", err)
	}
}
