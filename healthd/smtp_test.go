package healthd

import (
	"bufio"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/raftlvs/raftlvs/fsm"
)

// smtpServer greets with greeting, then answers the HELO line with heloReply and reports
// the line it got.
func smtpServer(t *testing.T, lo netip.Addr, greeting, heloReply string) (netip.AddrPort, <-chan string) {
	t.Helper()
	helo := make(chan string, 4)
	return listen(t, lo, func(c net.Conn) {
		if _, err := io.WriteString(c, greeting); err != nil {
			return
		}
		r := bufio.NewReader(c)
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		helo <- strings.TrimRight(line, "\r\n")
		io.WriteString(c, heloReply)
		r.ReadString('\n') // QUIT
	}), helo
}

func TestSMTPCheck(t *testing.T) {
	t.Parallel() // waits out timeouts
	cfg := CheckerConfig{Hostname: "director-1.example"}
	families(t, func(t *testing.T, lo netip.Addr) {
		t.Run("a 220 greeting and 250 to HELO are up", func(t *testing.T) {
			to, helo := smtpServer(t, lo, "220-mx.example ESMTP\r\n220 ready\r\n", "250 mx.example\r\n")
			wantUp(t, run(t, spec(t, fsm.CheckSMTP, generous, nil), cfg, to), "SMTP 250")
			if got := <-helo; got != "HELO director-1.example" {
				t.Errorf("server got %q, want HELO with the director's name", got)
			}
		})
		t.Run("the HELO name is the spec's", func(t *testing.T) {
			to, helo := smtpServer(t, lo, "220 ready\r\n", "250 ok\r\n")
			wantUp(t, run(t, spec(t, fsm.CheckSMTP, generous, func(c *fsm.HealthCheck) { c.HELO = "lb.example" }), cfg, to), "SMTP 250")
			if got := <-helo; got != "HELO lb.example" {
				t.Errorf("server got %q, want HELO lb.example", got)
			}
		})
		t.Run("a 554 greeting is down", func(t *testing.T) {
			to, _ := smtpServer(t, lo, "554 no service here\r\n", "")
			wantDown(t, run(t, spec(t, fsm.CheckSMTP, generous, nil), cfg, to), ErrStatus, "SMTP greeting 554 no service here")
		})
		t.Run("a refused HELO is down", func(t *testing.T) {
			to, _ := smtpServer(t, lo, "220 ready\r\n", "501 bad HELO\r\n")
			wantDown(t, run(t, spec(t, fsm.CheckSMTP, generous, nil), cfg, to), ErrStatus, "SMTP HELO 501 bad HELO")
		})
		t.Run("a server that is not SMTP is a protocol error", func(t *testing.T) {
			to, _ := smtpServer(t, lo, "SSH-2.0-OpenSSH_9.6\r\n", "")
			wantDown(t, run(t, spec(t, fsm.CheckSMTP, generous, nil), cfg, to), ErrProtocol, "not an SMTP reply")
		})
		t.Run("no greeting is a timeout", func(t *testing.T) {
			to := listen(t, lo, func(c net.Conn) { io.Copy(io.Discard, c) })
			wantDown(t, run(t, spec(t, fsm.CheckSMTP, short, nil), cfg, to), ErrTimeout, "timeout after "+short.String()+" (wait for the greeting reply)")
		})
	})
}
