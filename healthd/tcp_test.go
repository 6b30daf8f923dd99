package healthd

import (
	"net"
	"net/netip"
	"testing"

	"github.com/raftlvs/raftlvs/fsm"
)

func TestTCPCheckIsUpWhenTheConnectionOpens(t *testing.T) {
	families(t, func(t *testing.T, lo netip.Addr) {
		to := listen(t, lo, func(net.Conn) {})
		wantUp(t, run(t, spec(t, fsm.CheckTCP, generous, nil), CheckerConfig{}, to), "connected")
	})
}

func TestTCPCheckIsDownWhenRefused(t *testing.T) {
	families(t, func(t *testing.T, lo netip.Addr) {
		to := closedPort(t, "tcp", lo)
		wantDown(t, run(t, spec(t, fsm.CheckTCP, generous, nil), CheckerConfig{}, to), ErrRefused, "connect: connection refused")
	})
}

func TestTCPCheckSendsFromItsSourceAddress(t *testing.T) {
	seen := make(chan netip.Addr, 1)
	to := listen(t, lo4, func(c net.Conn) { seen <- addrPort(c.RemoteAddr()).Addr() })
	src := netip.MustParseAddr("127.0.0.2") // all of 127/8 is on lo
	wantUp(t, run(t, spec(t, fsm.CheckTCP, generous, func(c *fsm.HealthCheck) { c.Source = src }), CheckerConfig{}, to), "")
	if got := <-seen; got != src {
		t.Errorf("the server saw the check come from %s, want %s", got, src)
	}
}

func TestCheckRefusesASourceOfTheOtherFamily(t *testing.T) {
	to := listen(t, lo6, func(net.Conn) {})
	r := run(t, spec(t, fsm.CheckTCP, generous, func(c *fsm.HealthCheck) { c.Source = lo4 }), CheckerConfig{}, to)
	wantDown(t, r, ErrBadCheck, "different families")
}

func TestTCPCheckWithoutAPortSaysSo(t *testing.T) {
	r := run(t, spec(t, fsm.CheckTCP, generous, nil), CheckerConfig{}, netip.AddrPortFrom(lo4, 0))
	wantDown(t, r, ErrBadCheck, "set health_check.port")
}

func TestNoneCheckIsAlwaysUp(t *testing.T) {
	wantUp(t, run(t, &fsm.HealthCheck{Type: fsm.CheckNone}, CheckerConfig{}, closedPort(t, "tcp", lo4)), "type none")
}
