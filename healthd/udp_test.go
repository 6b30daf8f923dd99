package healthd

import (
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/raftlvs/raftlvs/fsm"
)

// udpServer receives datagrams on lo, reports each, and answers with reply(datagram), or
// not at all if reply returns nil.
func udpServer(t *testing.T, lo netip.Addr, reply func([]byte) []byte) (netip.AddrPort, <-chan []byte) {
	t.Helper()
	pc, err := net.ListenPacket("udp", netip.AddrPortFrom(lo, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 16)
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 64<<10)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			d := append([]byte(nil), buf[:n]...)
			got <- d
			if r := reply(d); r != nil {
				pc.WriteTo(r, from)
			}
		}
	})
	t.Cleanup(func() { pc.Close(); wg.Wait() })
	return addrPort(pc.LocalAddr()), got
}

func echoPong(d []byte) []byte { return append([]byte("pong:"), d...) }

func TestUDPCheck(t *testing.T) {
	t.Parallel() // waits out timeouts
	families(t, func(t *testing.T, lo netip.Addr) {
		echo, echoed := udpServer(t, lo, echoPong)
		wrong, _ := udpServer(t, lo, func([]byte) []byte { return []byte("nope") })
		silent, heard := udpServer(t, lo, func([]byte) []byte { return nil })
		closed := closedPort(t, "udp", lo)
		ping := func(c *fsm.HealthCheck) { c.PayloadHex = "70696e67" } // "ping"
		expect := func(c *fsm.HealthCheck) { ping(c); c.Expect = "^pong:ping$" }

		t.Run("a reply matching expect is up", func(t *testing.T) {
			wantUp(t, run(t, spec(t, fsm.CheckUDP, generous, expect), CheckerConfig{}, echo), "reply matches")
			if d := <-echoed; string(d) != "ping" {
				t.Errorf("server got %q, want the payload %q", d, "ping")
			}
		})
		t.Run("a reply not matching expect is down", func(t *testing.T) {
			wantDown(t, run(t, spec(t, fsm.CheckUDP, generous, expect), CheckerConfig{}, wrong), ErrContent, "reply does not match expect")
		})
		t.Run("silence with expect is a timeout", func(t *testing.T) {
			wantDown(t, run(t, spec(t, fsm.CheckUDP, short, expect), CheckerConfig{}, silent), ErrTimeout, "timeout after "+short.String()+" (wait for the reply)")
			<-heard
		})
		t.Run("silence without expect is up", func(t *testing.T) {
			wantUp(t, run(t, spec(t, fsm.CheckUDP, short, ping), CheckerConfig{}, silent), "no reply and no ICMP port unreachable")
			<-heard
		})
		t.Run("any reply without expect is up", func(t *testing.T) {
			wantUp(t, run(t, spec(t, fsm.CheckUDP, generous, ping), CheckerConfig{}, echo), "reply received")
			<-echoed
		})
		t.Run("the default payload is an empty datagram", func(t *testing.T) {
			wantUp(t, run(t, spec(t, fsm.CheckUDP, generous, nil), CheckerConfig{}, echo), "reply received")
			if d := <-echoed; len(d) != 0 {
				t.Errorf("server got %q, want an empty datagram", d)
			}
		})
		t.Run("a closed port is down by ICMP port unreachable", func(t *testing.T) {
			wantDown(t, run(t, spec(t, fsm.CheckUDP, generous, ping), CheckerConfig{}, closed), ErrRefused, "ICMP port unreachable")
		})
		t.Run("a closed port is down even with expect", func(t *testing.T) {
			wantDown(t, run(t, spec(t, fsm.CheckUDP, generous, expect), CheckerConfig{}, closed), ErrRefused, "ICMP port unreachable")
		})
	})
}
