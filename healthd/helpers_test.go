package healthd

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// The checker tests run real servers on 127.0.0.1 and ::1, started by the test; nothing
// leaves the loopback interface. A check that should succeed gets a generous timeout (it
// returns as soon as it has its answer); one that must time out gets a short one and a
// server that provably never answers in time, so no test depends on how fast the machine is.

const (
	generous = 10 * time.Second
	short    = time.Second
)

var (
	lo4 = netip.MustParseAddr("127.0.0.1")
	lo6 = netip.MustParseAddr("::1")
)

// families runs a test over IPv4 and IPv6 loopback, side by side: each has its own servers.
func families(t *testing.T, fn func(t *testing.T, lo netip.Addr)) {
	for _, lo := range []netip.Addr{lo4, lo6} {
		t.Run(string(fsm.FamilyOf(lo)), func(t *testing.T) {
			t.Parallel()
			fn(t, lo)
		})
	}
}

// spec returns a valid spec of type typ with a timeout of to; edit changes it further.
func spec(t *testing.T, typ fsm.CheckType, to time.Duration, edit func(*fsm.HealthCheck)) *fsm.HealthCheck {
	t.Helper()
	c := &fsm.HealthCheck{Type: typ, IntervalMS: int(max(to, time.Second) * 2 / time.Millisecond), TimeoutMS: int(to / time.Millisecond)}
	if edit != nil {
		edit(c)
	}
	if err := fsm.ValidateHealthCheck("health_check", c); err != nil {
		t.Fatalf("test spec is not valid: %v", err)
	}
	return c
}

// run compiles a spec and checks to once.
func run(t *testing.T, c *fsm.HealthCheck, cfg CheckerConfig, to netip.AddrPort) Result {
	t.Helper()
	ch, err := NewChecker(c, cfg)
	if err != nil {
		t.Fatalf("NewChecker: %v", err)
	}
	return ch.Check(context.Background(), to)
}

// wantUp and wantDown check a result's verdict, class and reason.
func wantUp(t *testing.T, r Result, reason string) {
	t.Helper()
	if !r.Up || r.Err != nil {
		t.Fatalf("result = down (%q, %v), want up", r.Reason, r.Err)
	}
	if reason != "" && !strings.Contains(r.Reason, reason) {
		t.Errorf("reason = %q, want it to contain %q", r.Reason, reason)
	}
}

func wantDown(t *testing.T, r Result, kind error, reason string) {
	t.Helper()
	if r.Up {
		t.Fatalf("result = up (%q), want down", r.Reason)
	}
	if !errors.Is(r.Err, kind) {
		t.Errorf("err = %v, want it to be %v", r.Err, kind)
	}
	if !strings.Contains(r.Reason, reason) {
		t.Errorf("reason = %q, want it to contain %q", r.Reason, reason)
	}
}

// listen opens a TCP listener on lo and serves each connection with serve until the test
// ends, then closes everything and waits for the handlers.
func listen(t *testing.T, lo netip.Addr, serve func(net.Conn)) netip.AddrPort {
	t.Helper()
	l, err := net.Listen("tcp", netip.AddrPortFrom(lo, 0).String())
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				serve(c)
			})
		}
	})
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return addrPort(l.Addr())
}

// closedPort returns a port on lo that nothing listens on (it was bound, then released).
func closedPort(t *testing.T, network string, lo netip.Addr) netip.AddrPort {
	t.Helper()
	var a net.Addr
	switch network {
	case "tcp":
		l, err := net.Listen("tcp", netip.AddrPortFrom(lo, 0).String())
		if err != nil {
			t.Fatal(err)
		}
		a = l.Addr()
		l.Close()
	default:
		c, err := net.ListenPacket("udp", netip.AddrPortFrom(lo, 0).String())
		if err != nil {
			t.Fatal(err)
		}
		a = c.LocalAddr()
		c.Close()
	}
	return addrPort(a)
}

func addrPort(a net.Addr) netip.AddrPort {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		panic(err)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// textLogger logs to w, at every level.
func textLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// prepared applies commands to a new state as the leader would (Prepare, then Execute).
func prepared(t testing.TB, cmds ...fsm.Command) *fsm.State {
	t.Helper()
	s := fsm.NewState()
	for _, c := range cmds {
		p, err := s.Prepare(c)
		if err == nil {
			err = s.Execute(p)
		}
		if err != nil {
			t.Fatalf("%T: %v", c, err)
		}
	}
	return s
}

func director(id string, witness bool) fsm.Command {
	return fsm.RegisterDirector{Director: fsm.Director{ID: id, RaftAddr: "192.0.2.1:7000", APIAddr: "192.0.2.1:8080", Witness: witness}}
}

// rsKey is the key of the web service's real server number i (from 1).
func rsKey(i int) fsm.RSKey {
	return fsm.RSKey{Service: "web", Addr: netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), Port: 80}
}
