package healthd

import (
	"context"
	"net"
	"net/netip"
)

// tcpCheck is up when a TCP connection opens.
type tcpCheck struct{ base base }

func (c *tcpCheck) check(ctx context.Context, to netip.AddrPort) Result {
	to, ok := withPort(to, 0)
	if !ok {
		return noPort(to)
	}
	conn, r, ok := c.base.dial(ctx, "tcp", to)
	if !ok {
		return r
	}
	abort(conn)
	return up("connected")
}

// abort closes with a reset rather than a FIN: a director checking thousands of servers a
// second would otherwise hold a TIME_WAIT socket per check (HAProxy closes its checks so).
func abort(conn net.Conn) {
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}
