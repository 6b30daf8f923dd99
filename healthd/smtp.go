package healthd

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/raftlvs/raftlvs/fsm"
)

// smtpCheck reads the 220 greeting, says HELO and wants 250, then QUIT without waiting
// for the goodbye.
type smtpCheck struct {
	base base
	helo string
}

func newSMTPCheck(b base, spec *fsm.HealthCheck, cfg CheckerConfig) (*smtpCheck, error) {
	c := &smtpCheck{base: b, helo: spec.HELO}
	if c.helo == "" {
		c.helo = hostname(cfg)
	}
	return c, nil
}

func (c *smtpCheck) check(ctx context.Context, to netip.AddrPort) Result {
	to, _ = withPort(to, 25)
	conn, r, ok := c.base.dial(ctx, "tcp", to)
	if !ok {
		return r
	}
	defer abort(conn)
	defer follow(ctx, conn)()
	tp := textproto.NewConn(conn)
	if r, ok := c.expect(ctx, tp, 220, "greeting"); !ok {
		return r
	}
	if err := tp.PrintfLine("HELO %s", c.helo); err != nil {
		return failed(ctx, "send HELO", err, c.base.timeout)
	}
	if r, ok := c.expect(ctx, tp, 250, "HELO"); !ok {
		return r
	}
	_ = tp.PrintfLine("QUIT")
	return up("SMTP 250")
}

// expect reads one reply, possibly of several lines, and wants code.
func (c *smtpCheck) expect(ctx context.Context, tp *textproto.Conn, code int, what string) (Result, bool) {
	got, msg, err := readReply(&tp.Reader)
	switch {
	case errors.Is(err, errNotSMTP):
		return down(ErrProtocol, err, "SMTP %s: not an SMTP reply", what), false
	case err != nil:
		return failed(ctx, fmt.Sprintf("wait for the %s reply", what), err, c.base.timeout), false
	case got != code:
		return down(ErrStatus, nil, "SMTP %s %d %s", what, got, clip(msg, 80)), false
	}
	return Result{}, true
}

var errNotSMTP = errors.New("not an SMTP reply")

// readReply reads "250-first", "250 last": one code, the text of the first line. It
// refuses a line that is not a reply at once (textproto's ReadResponse would read on,
// for "SSH-2.0-…", until the deadline).
func readReply(r *textproto.Reader) (code int, first string, err error) {
	for i := 0; ; i++ {
		line, err := r.ReadLine()
		if err != nil {
			return 0, "", err
		}
		c, perr := strconv.Atoi(line[:min(3, len(line))])
		if perr != nil || c < 200 || c > 599 || len(line) > 3 && line[3] != ' ' && line[3] != '-' || i > 0 && c != code {
			return 0, "", fmt.Errorf("%q: %w", clip(line, 40), errNotSMTP)
		}
		if i == 0 {
			code, first = c, strings.TrimSpace(line[min(4, len(line)):])
		}
		if len(line) == 3 || line[3] == ' ' {
			return code, first, nil
		}
	}
}

// clip shortens a server's text for a reason: its first line, at most n bytes.
func clip(s string, n int) string {
	s, _, _ = strings.Cut(s, "\n")
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}
