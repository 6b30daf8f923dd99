package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlvs/raftlvs/pki"
)

// RaftALPN is the TLS application protocol of the Raft transport. Both ends require
// it, so a director's API port (which speaks h2 and http/1.1 with the same certificate)
// can never pass for its Raft port, nor the reverse: a wrong --raft-advertise pointing at
// the API fails the join proof instead of adding a voter that never answers.
const RaftALPN = "raftlvs-raft/1"

const (
	// DefaultHandshakeTimeout bounds an inbound handshake, and the join proof when its
	// ctx has no deadline (Consul's RPCHandshakeTimeout is 5 s too).
	DefaultHandshakeTimeout = 5 * time.Second
	// maxPendingHandshakes bounds the goroutines a flood of connections can hold; the
	// kernel's backlog queues the rest.
	maxPendingHandshakes = 64
	// refusalLogInterval: at most one refusal line per interval; a scanner or a
	// misconfigured agent dialling in a loop must not flood the log.
	refusalLogInterval = 10 * time.Second
)

var (
	// ErrNotRaftEndpoint: the peer speaks TLS, with a good certificate, but not the
	// Raft protocol (no RaftALPN): an API port, say.
	ErrNotRaftEndpoint = errors.New("not a raft endpoint")
	// ErrPeerProof classifies every failure of DialRaftPeer: the address does not prove
	// that the director being joined listens there.
	ErrPeerProof = errors.New("raft peer failed the director proof")
)

// TLSStreamConfig configures a TLSStreamLayer.
type TLSStreamConfig struct {
	// Listener is the bound TCP listener; the stream layer owns it once
	// NewTLSStreamLayer succeeds (and closes it on Close).
	Listener net.Listener
	// Advertise is the address peers dial; nil is the listener's, which must then not
	// be a wildcard.
	Advertise net.Addr
	// TLS is this node's material: a *pki.Reloader in the daemon. Its certificate must
	// be a director's.
	TLS pki.Source
	// HandshakeTimeout bounds each inbound handshake; 0 is DefaultHandshakeTimeout.
	// Outbound handshakes are bounded by raft's dial timeout.
	HandshakeTimeout time.Duration
	// Revoked, if set, refuses the certificates it reports (a removed director's).
	Revoked func(*x509.Certificate) bool
	// PeerID, if set, gives the node id the Raft configuration holds for an address;
	// Dial then refuses a director certificate for another id there. raft's Dial knows
	// only the address, so without it any director of the cluster passes.
	PeerID func(raft.ServerAddress) (id string, ok bool)
	// OnHandshake, if set, sees the outcome of every handshake, both directions, from
	// the goroutine that made it: for metrics, and for tests. It must not block.
	OnHandshake func(StreamHandshake)
	Logger      *slog.Logger
}

// StreamHandshake is the outcome of one TLS handshake of the Raft transport.
type StreamHandshake struct {
	Inbound bool
	Remote  string
	Peer    pki.Identity      // on success
	Cert    *x509.Certificate // the peer's leaf, on success
	Err     error             // why the peer was refused, or the dial failed
}

// TLSStreamLayer is a raft.StreamLayer over mutual TLS (≥ 1.3) in which both ends must
// be directors of this cluster: an agent's or an operator's certificate, one from
// another CA, an expired one, or none, is refused at the handshake, before raft reads
// a byte (consul#792, CVE-2019-9764).
type TLSStreamLayer struct {
	ln        net.Listener
	addr      net.Addr
	src       pki.Source
	policy    pki.Policy
	server    *tls.Config
	timeout   time.Duration
	peerID    func(raft.ServerAddress) (string, bool)
	onHS      func(StreamHandshake)
	log       *slog.Logger
	refusals  refusalLog
	sem       chan struct{}
	conns     chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	mu      sync.Mutex
	pending map[net.Conn]struct{}    // inbound, handshaking
	live    map[*streamConn]struct{} // inbound and outbound, established
}

var _ raft.StreamLayer = (*TLSStreamLayer)(nil)

// NewTLSStreamLayer starts accepting on cfg.Listener. Pass it to
// raft.NewNetworkTransportWithConfig as the Stream.
func NewTLSStreamLayer(cfg TLSStreamConfig) (*TLSStreamLayer, error) {
	if cfg.Listener == nil || cfg.TLS == nil {
		return nil, &ConfigError{Field: "TLSStreamConfig", Reason: "a listener and TLS material are required"}
	}
	addr := cfg.Advertise
	if addr == nil {
		addr = cfg.Listener.Addr()
	}
	if tcp, ok := addr.(*net.TCPAddr); !ok || tcp.IP == nil || tcp.IP.IsUnspecified() {
		// As raft.NewTCPTransport: peers cannot dial 0.0.0.0.
		return nil, &ConfigError{Field: "RaftAdvertise", Reason: fmt.Sprintf("raft address %v is not advertisable: set an advertise address", addr)}
	}
	if b := cfg.TLS.Current(); b == nil || b.Leaf() == nil || b.Identity.Role != pki.RoleDirector {
		return nil, &ConfigError{Field: "TLS", Reason: "the raft transport needs this node's director certificate"}
	}
	s := &TLSStreamLayer{
		ln: cfg.Listener, addr: addr, src: cfg.TLS, timeout: cfg.HandshakeTimeout,
		peerID: cfg.PeerID, onHS: cfg.OnHandshake, log: cfg.Logger,
		sem:     make(chan struct{}, maxPendingHandshakes),
		conns:   make(chan net.Conn),
		closed:  make(chan struct{}),
		pending: map[net.Conn]struct{}{},
		live:    map[*streamConn]struct{}{},
	}
	if s.timeout <= 0 {
		s.timeout = DefaultHandshakeTimeout
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.refusals.log = s.log
	s.policy = pki.Require(pki.RoleDirector)
	s.policy.Revoked = cfg.Revoked
	s.server = pki.ServerConfig(s.src, s.policy)
	raftTLS(s.server, s.src, s.policy, x509.ExtKeyUsageClientAuth, RaftALPN)
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// raftTLS narrows a config of package pki to the Raft transport: TLS 1.3 only (both
// ends are raftlvs; the client certificate travels encrypted), RaftALPN negotiated.
func raftTLS(c *tls.Config, src pki.Source, p pki.Policy, usage x509.ExtKeyUsage, protos ...string) {
	c.MinVersion = tls.VersionTLS13
	c.NextProtos = protos
	verify := p.VerifyConnection(src, usage, false)
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if err := verify(cs); err != nil {
			return err
		}
		if cs.NegotiatedProtocol != RaftALPN {
			return fmt.Errorf("%w: the peer's certificate passed, but it negotiated %q, not %s (an API port, or not a raft transport)",
				ErrNotRaftEndpoint, cs.NegotiatedProtocol, RaftALPN)
		}
		return nil
	}
}

// raftClientConfig offers http/1.1 after RaftALPN, never to speak it: an HTTPS server
// (a director's API port, by a wrong --raft-advertise) picks it and the handshake fails
// with ErrNotRaftEndpoint, where offering RaftALPN alone would end in a bare "no
// application protocol" alert. A raft server always picks RaftALPN.
func raftClientConfig(src pki.Source, p pki.Policy) *tls.Config {
	c := pki.ClientConfig(src, p)
	raftTLS(c, src, p, x509.ExtKeyUsageServerAuth, RaftALPN, "http/1.1")
	return c
}

// Accept returns the next connection whose peer proved to be a director of this
// cluster. Refused peers never reach raft; they are logged, rate-limited.
func (s *TLSStreamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.closed:
		return nil, fmt.Errorf("raft stream layer closed: %w", net.ErrClosed)
	}
}

// acceptLoop accepts TCP connections and hands each to a handshake goroutine, so that
// one slow or silent peer never holds up the others (raft's own accept loop is serial).
func (s *TLSStreamLayer) acceptLoop() {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		raw, err := s.ln.Accept()
		if err != nil {
			if s.isClosed() {
				return
			}
			// EMFILE and the like: back off as net/http does, rather than spin.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.refusals.refused("", fmt.Errorf("accept: %w", err))
			select {
			case <-time.After(backoff):
				continue
			case <-s.closed:
				return
			}
		}
		backoff = 0
		select {
		case s.sem <- struct{}{}:
		case <-s.closed:
			raw.Close()
			return
		}
		s.wg.Add(1)
		go s.handshake(raw)
	}
}

func (s *TLSStreamLayer) handshake(raw net.Conn) {
	defer s.wg.Done()
	defer func() { <-s.sem }()
	if !s.track(raw) {
		raw.Close()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	conn := tls.Server(raw, s.server)
	err := conn.HandshakeContext(ctx) // closes raw if ctx ends first
	cancel()
	s.untrack(raw)
	hs := StreamHandshake{Inbound: true, Remote: raw.RemoteAddr().String(), Err: err}
	if err != nil {
		raw.Close()
		s.report(hs)
		s.refusals.refused(hs.Remote, err)
		return
	}
	hs.Peer, hs.Cert = peerOf(conn)
	s.report(hs)
	sc, ok := s.adopt(conn)
	if !ok {
		return
	}
	select {
	case s.conns <- sc:
	case <-s.closed:
		sc.Close()
	}
}

// Dial opens a stream to a peer that must prove to be a director of this cluster (and,
// with PeerID, the one the Raft configuration expects there). The timeout covers the
// TCP connect and the handshake: tls.Dialer bounds both, net.Dial + tls.Client would
// leave the handshake unbounded.
func (s *TLSStreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	p := s.policy
	if s.peerID != nil {
		if id, ok := s.peerID(address); ok {
			p = p.WithID(id)
		}
	}
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: timeout}, Config: raftClientConfig(s.src, p)}
	c, err := d.Dial("tcp", string(address))
	hs := StreamHandshake{Remote: string(address), Err: err}
	if err != nil {
		s.report(hs)
		return nil, fmt.Errorf("raft dial %s: %w", address, err)
	}
	conn := c.(*tls.Conn)
	hs.Peer, hs.Cert = peerOf(conn)
	s.report(hs)
	sc, ok := s.adopt(conn)
	if !ok {
		return nil, fmt.Errorf("raft dial %s: %w", address, net.ErrClosed)
	}
	return sc, nil
}

// Addr is the address peers dial (raft advertises it).
func (s *TLSStreamLayer) Addr() net.Addr { return s.addr }

// Close stops accepting, aborts handshakes in progress and closes every stream. raft's
// transport calls it on shutdown.
func (s *TLSStreamLayer) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.closed)
		err = s.ln.Close()
		s.closeAll()
		s.wg.Wait()
	})
	return err
}

// RestartStreams makes every Raft connection of this node handshake again with the
// current material: it drops the transport's pooled streams, then closes every stream
// this layer made or accepted, in use or not (the leader's replication pipelines live
// outside the pool). Subscribe it to the pki.Reloader: a TLS connection keeps the
// certificates it was opened with for as long as it lives. raft reconnects at its next
// RPC; one may fail on the way.
func (s *TLSStreamLayer) RestartStreams(t interface{ CloseStreams() }) {
	if t != nil {
		t.CloseStreams()
	}
	s.closeAll()
}

func (s *TLSStreamLayer) closeAll() {
	s.mu.Lock()
	pending := make([]net.Conn, 0, len(s.pending))
	for c := range s.pending {
		pending = append(pending, c)
	}
	live := make([]*streamConn, 0, len(s.live))
	for c := range s.live {
		live = append(live, c)
	}
	s.mu.Unlock()
	for _, c := range pending {
		c.Close()
	}
	for _, c := range live {
		c.byLayer.Store(true)
		c.Close()
	}
}

func (s *TLSStreamLayer) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

func (s *TLSStreamLayer) track(raw net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isClosed() {
		return false
	}
	s.pending[raw] = struct{}{}
	return true
}

func (s *TLSStreamLayer) untrack(raw net.Conn) {
	s.mu.Lock()
	delete(s.pending, raw)
	s.mu.Unlock()
}

// adopt registers an established stream so RestartStreams and Close reach it.
func (s *TLSStreamLayer) adopt(c *tls.Conn) (*streamConn, bool) {
	sc := &streamConn{Conn: c, layer: s}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isClosed() {
		c.Close()
		return nil, false
	}
	s.live[sc] = struct{}{}
	return sc, true
}

func (s *TLSStreamLayer) report(hs StreamHandshake) {
	if s.onHS != nil {
		s.onHS(hs)
	}
}

func peerOf(c *tls.Conn) (pki.Identity, *x509.Certificate) {
	cs := c.ConnectionState()
	id, _ := pki.PeerIdentity(&cs)
	return id, cs.PeerCertificates[0]
}

// streamConn is an established stream the layer tracks.
type streamConn struct {
	net.Conn
	layer   *TLSStreamLayer
	byLayer atomic.Bool
	once    sync.Once
}

// Read reports a close by the layer (RestartStreams, Close) as the end of the stream:
// raft's connection handler then returns quietly instead of logging "failed to decode
// incoming command" for each stream.
func (c *streamConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil && c.byLayer.Load() {
		err = io.EOF
	}
	return n, err
}

func (c *streamConn) Close() error {
	c.once.Do(func() {
		c.layer.mu.Lock()
		delete(c.layer.live, c)
		c.layer.mu.Unlock()
	})
	return c.Conn.Close()
}

// refusalLog logs refused connections, at most one line per refusalLogInterval, with
// the count of those it left out.
type refusalLog struct {
	log        *slog.Logger
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (l *refusalLog) refused(remote string, err error) {
	l.mu.Lock()
	now := time.Now()
	if !l.last.IsZero() && now.Sub(l.last) < refusalLogInterval {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	l.mu.Unlock()
	l.log.Warn("raft transport refused a connection", "remote", remote, "error", err, "refusals_not_logged", n)
}

// DialRaftPeer proves that the director wantID listens at the Raft address addr: a TLS
// handshake there must present a director certificate of this cluster for wantID,
// speaking the Raft protocol. The leader calls it before AddVoter, so that a voter is
// added only where its own node answers: a plain listener, a node of another cluster,
// another director's address, or an API port is refused with an error that says which
// (all wrap ErrPeerProof; certificate problems also wrap pki's errors). Without a ctx
// deadline it gives up after DefaultHandshakeTimeout.
//
// The proof is one-way: under TLS 1.3 a joiner that refuses the leader's certificate is
// seen only at the first AppendEntries.
func DialRaftPeer(ctx context.Context, addr string, src pki.Source, wantID string) (pki.Identity, error) {
	if wantID == "" {
		return pki.Identity{}, fmt.Errorf("prove raft peer at %s: no node id to check: %w", addr, ErrPeerProof)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultHandshakeTimeout)
		defer cancel()
	}
	d := tls.Dialer{Config: raftClientConfig(src, pki.Require(pki.RoleDirector).WithID(wantID))}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return pki.Identity{}, proofError(addr, wantID, err)
	}
	defer c.Close()
	id, _ := peerOf(c.(*tls.Conn))
	return id, nil
}

func proofError(addr, wantID string, err error) error {
	var op *net.OpError
	var notTLS tls.RecordHeaderError
	switch {
	case errors.Is(err, ErrNotRaftEndpoint) || isPKIRefusal(err):
		return fmt.Errorf("prove director %s at raft address %s: %w: %w", wantID, addr, err, ErrPeerProof)
	case errors.As(err, &op) && op.Op == "dial":
		return fmt.Errorf("prove director %s: cannot connect to raft address %s: %w: %w", wantID, addr, err, ErrPeerProof)
	case errors.As(err, &notTLS):
		return fmt.Errorf("prove director %s: raft address %s does not speak TLS (a raft transport without TLS?): %w: %w", wantID, addr, err, ErrPeerProof)
	}
	return fmt.Errorf("prove director %s: raft address %s did not complete a TLS handshake (%w); the joining director must listen there with TLS and its certificate: %w",
		wantID, addr, err, ErrPeerProof)
}

// isPKIRefusal reports whether err is one of pki's reasons to refuse a certificate.
func isPKIRefusal(err error) bool {
	for _, e := range []error{pki.ErrNoCertificate, pki.ErrUnknownCA, pki.ErrCertExpired, pki.ErrCertNotYetValid,
		pki.ErrCertRevoked, pki.ErrNoIdentity, pki.ErrWrongCluster, pki.ErrWrongRole, pki.ErrWrongID,
		pki.ErrWrongUsage, pki.ErrBadChain} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
