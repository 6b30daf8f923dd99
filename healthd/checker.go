package healthd

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// Checker probes one address once. Check never outlives ctx, and a checker made by
// NewChecker also never outlives its spec's timeout: connect, request and reply share
// that one deadline.
type Checker interface {
	Check(ctx context.Context, to netip.AddrPort) Result
}

// ErrBadConfig classifies a configuration this package refuses (a director's, not a spec's).
var ErrBadConfig = errors.New("bad health-check configuration")

// CheckerConfig is what the director, not the spec, decides about checks.
type CheckerConfig struct {
	// ExecPolicy says where exec checks' commands must live; its zero value refuses them.
	ExecPolicy ExecPolicy
	// TLSRoots verifies https checks that set TLSVerify; nil is the system's roots.
	TLSRoots *x509.CertPool
	// Hostname is the smtp checks' default HELO name; "" is os.Hostname().
	Hostname string
	// Dial, if set, opens every check's connection instead of d.DialContext (d carries
	// the spec's source address): the namespace tests probe from a director's own
	// network namespace through it.
	Dial func(ctx context.Context, d *net.Dialer, network, address string) (net.Conn, error)
}

// NewChecker compiles a spec into a checker. A spec ValidateHealthCheck accepts compiles,
// except an exec command the policy refuses (ErrPolicy).
func NewChecker(spec *fsm.HealthCheck, cfg CheckerConfig) (Checker, error) {
	if spec == nil {
		return nil, fmt.Errorf("compile health check: no spec: %w", ErrBadCheck)
	}
	b := newBase(spec, cfg.Dial)
	var c protocol
	var err error
	switch spec.Type {
	case fsm.CheckNone:
		c = noneCheck{}
	case fsm.CheckTCP:
		c = &tcpCheck{base: b}
	case fsm.CheckHTTP, fsm.CheckHTTPS:
		c, err = newHTTPCheck(b, spec, cfg)
	case fsm.CheckUDP:
		c, err = newUDPCheck(b, spec)
	case fsm.CheckDNS:
		c, err = newDNSCheck(b, spec)
	case fsm.CheckSMTP:
		c, err = newSMTPCheck(b, spec, cfg)
	case fsm.CheckExec:
		c, err = newExecCheck(b, spec, cfg.ExecPolicy)
	default:
		err = fmt.Errorf("compile health check: unknown type %q: %w", spec.Type, ErrBadCheck)
	}
	if err != nil {
		return nil, err
	}
	return timed{timeout: b.timeout, protocol: c}, nil
}

// protocol is one checker's exchange; timed gives every one the same deadline and timing.
type protocol interface {
	check(ctx context.Context, to netip.AddrPort) Result
}

type timed struct {
	timeout  time.Duration
	protocol protocol
}

func (t timed) Check(ctx context.Context, to netip.AddrPort) Result {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	r := t.protocol.check(ctx, to)
	r.At, r.Latency = start, time.Since(start)
	return r
}

// base is what every network check shares: its timeout and the address it sends from.
type base struct {
	timeout time.Duration
	source  netip.Addr
	tcp     net.Dialer
	udp     net.Dialer
	// dialer opens connections: d.DialContext unless CheckerConfig.Dial says otherwise.
	dialer func(ctx context.Context, d *net.Dialer, network, address string) (net.Conn, error)
}

func newBase(spec *fsm.HealthCheck, dial func(context.Context, *net.Dialer, string, string) (net.Conn, error)) base {
	if dial == nil {
		dial = func(ctx context.Context, d *net.Dialer, network, address string) (net.Conn, error) {
			return d.DialContext(ctx, network, address)
		}
	}
	b := base{timeout: spec.Timeout(), source: spec.Source.Unmap(), dialer: dial}
	// A check's connection lives for one exchange: keep-alive probes would only cost
	// three setsockopt calls per check.
	b.tcp.KeepAlive = -1
	if b.source.IsValid() {
		b.tcp.LocalAddr = &net.TCPAddr{IP: b.source.AsSlice()}
		b.udp.LocalAddr = &net.UDPAddr{IP: b.source.AsSlice()}
	}
	return b
}

// sourceMismatch refuses a source address of the other family before the kernel does,
// with a reason an operator can act on.
func (b *base) sourceMismatch(to netip.AddrPort) (Result, bool) {
	if b.source.IsValid() && b.source.Is4() != to.Addr().Unmap().Is4() {
		return down(ErrBadCheck, nil, "source %s and real server %s are of different families", b.source, to.Addr()), true
	}
	return Result{}, false
}

// dial connects with the check's deadline and source address.
func (b *base) dial(ctx context.Context, network string, to netip.AddrPort) (net.Conn, Result, bool) {
	if r, bad := b.sourceMismatch(to); bad {
		return nil, r, false
	}
	d := &b.tcp
	if network == "udp" {
		d = &b.udp
	}
	conn, err := b.dialer(ctx, d, network, to.String())
	if err != nil {
		return nil, failed(ctx, "connect", err, b.timeout), false
	}
	return conn, Result{}, true
}

// longAgo, set as a deadline, ends a blocked read or write at once.
var longAgo = time.Unix(1, 0)

// follow makes conn obey ctx: its deadline, and an early cancel. Call the returned stop
// before closing conn.
func follow(ctx context.Context, conn net.Conn) (stop func() bool) {
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	return context.AfterFunc(ctx, func() { _ = conn.SetDeadline(longAgo) })
}

// withPort is the address probed: the check's port, else the real server's, else the
// protocol's well-known port (a real server of a port-0 service has none).
func withPort(to netip.AddrPort, wellKnown uint16) (netip.AddrPort, bool) {
	if to.Port() != 0 {
		return to, true
	}
	if wellKnown == 0 {
		return to, false
	}
	return netip.AddrPortFrom(to.Addr(), wellKnown), true
}

func noPort(to netip.AddrPort) Result {
	return down(ErrBadCheck, nil, "no port to probe on %s: the real server has port 0, set health_check.port", to.Addr())
}

// noneCheck is the none type: the real server is always up.
type noneCheck struct{}

func (noneCheck) check(context.Context, netip.AddrPort) Result { return up("not checked (type none)") }

func hostname(cfg CheckerConfig) string {
	if cfg.Hostname != "" {
		return cfg.Hostname
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "localhost"
}
