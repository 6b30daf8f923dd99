package healthd

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"syscall"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// udpCheck sends one datagram on a connected socket, so that the kernel hands an ICMP
// port unreachable back as ECONNREFUSED. With expect, a reply must come and match; without
// it, silence until the deadline is up (UDP servers rarely answer a probe), and only the
// ICMP error is down.
type udpCheck struct {
	base    base
	payload []byte
	expect  *regexp.Regexp
}

func newUDPCheck(b base, spec *fsm.HealthCheck) (*udpCheck, error) {
	c := &udpCheck{base: b}
	var err error
	if c.payload, err = hex.DecodeString(spec.PayloadHex); err != nil {
		return nil, fmt.Errorf("compile health check: payload_hex: %v: %w", err, ErrBadCheck)
	}
	if spec.Expect != "" {
		if c.expect, err = regexp.Compile(spec.Expect); err != nil {
			return nil, fmt.Errorf("compile health check: expect: %v: %w", err, ErrBadCheck)
		}
	}
	return c, nil
}

func (c *udpCheck) check(ctx context.Context, to netip.AddrPort) Result {
	to, ok := withPort(to, 0)
	if !ok {
		return noPort(to)
	}
	conn, r, ok := c.base.dial(ctx, "udp", to)
	if !ok {
		return r
	}
	defer conn.Close()
	defer follow(ctx, conn)()
	if _, err := conn.Write(c.payload); err != nil {
		return c.failed(ctx, "send", err)
	}
	buf := make([]byte, 64<<10)
	n, err := conn.Read(buf)
	switch {
	case err == nil && c.expect == nil:
		return up("reply received")
	case err == nil && c.expect.Match(buf[:n]):
		return up("reply matches")
	case err == nil:
		return down(ErrContent, nil, "reply does not match expect")
	case c.expect == nil && errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != context.Canceled:
		// The socket's deadline is the check's; ctx may not have noticed yet.
		return up("no reply and no ICMP port unreachable")
	}
	return c.failed(ctx, "wait for the reply", err)
}

func (c *udpCheck) failed(ctx context.Context, step string, err error) Result {
	return datagramFailed(ctx, step, err, c.base.timeout)
}

// datagramFailed names the ICMP error a connected UDP socket reports as ECONNREFUSED.
func datagramFailed(ctx context.Context, step string, err error, timeout time.Duration) Result {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return down(ErrRefused, err, "ICMP port unreachable")
	}
	return failed(ctx, step, err, timeout)
}
