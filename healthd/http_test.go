package healthd

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// request is what the test web server saw of a check.
type request struct {
	method, uri, host, sni string
}

// webServer serves a few paths on lo and reports each request it gets.
func webServer(t *testing.T, lo netip.Addr, configure func(*httptest.Server)) (netip.AddrPort, <-chan request) {
	t.Helper()
	seen := make(chan request, 16)
	big := append(bytes.Repeat([]byte("a"), MaxBody), []byte("b-after-the-first-MiB")...)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		sni := ""
		if r.TLS != nil {
			sni = r.TLS.ServerName
		}
		seen <- request{method: r.Method, uri: r.RequestURI, host: r.Host, sni: sni}
		switch r.URL.Path {
		case "/redirect":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		case "/unavailable":
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
		case "/big":
			w.Write(big)
		default:
			io.WriteString(w, "hello, health checker")
		}
	})
	l, err := net.Listen("tcp", netip.AddrPortFrom(lo, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewUnstartedServer(mux)
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // the failed handshakes tests cause on purpose
	s.Listener.Close()
	s.Listener = l
	if configure != nil {
		configure(s)
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return addrPort(l.Addr()), seen
}

func md5hex(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

func TestHTTPCheckJudgesStatusAndBody(t *testing.T) {
	firstMiB := md5hex(bytes.Repeat([]byte("a"), MaxBody))
	tests := []struct {
		name   string
		edit   func(*fsm.HealthCheck)
		up     bool
		kind   error
		reason string
	}{
		{"200 is up by default", func(c *fsm.HealthCheck) { c.Path = "/" }, true, nil, "HTTP 200"},
		{"a redirect is up by default and not followed", func(c *fsm.HealthCheck) { c.Path = "/redirect" }, true, nil, "HTTP 302"},
		{"503 is down", func(c *fsm.HealthCheck) { c.Path = "/unavailable" }, false, ErrStatus, "HTTP 503"},
		{"a code outside the list is down", func(c *fsm.HealthCheck) { c.Path, c.Status = "/nocontent", []string{"200"} }, false, ErrStatus, "HTTP 204"},
		{"a code inside a listed range is up", func(c *fsm.HealthCheck) { c.Path, c.Status = "/nocontent", []string{"200", "204-206"} }, true, nil, "HTTP 204"},
		{"a matching body regex is up", func(c *fsm.HealthCheck) { c.BodyRegex = `health\s+checker$` }, true, nil, "HTTP 200"},
		{"a body regex that does not match is down", func(c *fsm.HealthCheck) { c.BodyRegex = "^goodbye" }, false, ErrContent, "body does not match regex"},
		{"a matching digest is up", func(c *fsm.HealthCheck) { c.Digest = md5hex([]byte("hello, health checker")) }, true, nil, "HTTP 200"},
		{"a wrong digest is down", func(c *fsm.HealthCheck) { c.Digest = md5hex([]byte("something else")) }, false, ErrContent, "body MD5 "},
		{"the digest covers only the first MiB", func(c *fsm.HealthCheck) { c.Path, c.Digest = "/big", firstMiB }, true, nil, "HTTP 200"},
		{"the regex never sees past the first MiB", func(c *fsm.HealthCheck) { c.Path, c.BodyRegex = "/big", "b-after" }, false, ErrContent, "body does not match regex"},
		{"the status is judged before the body", func(c *fsm.HealthCheck) { c.Path, c.BodyRegex = "/unavailable", "maintenance" }, false, ErrStatus, "HTTP 503"},
	}
	families(t, func(t *testing.T, lo netip.Addr) {
		to, _ := webServer(t, lo, nil)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := run(t, spec(t, fsm.CheckHTTP, generous, tt.edit), CheckerConfig{}, to)
				if tt.up {
					wantUp(t, r, tt.reason)
				} else {
					wantDown(t, r, tt.kind, tt.reason)
				}
			})
		}
	})
}

func TestHTTPCheckSendsMethodPathAndHost(t *testing.T) {
	to, seen := webServer(t, lo4, nil)
	tests := []struct {
		name string
		edit func(*fsm.HealthCheck)
		want request
	}{
		{"defaults: GET / with the address probed as Host", nil, request{method: "GET", uri: "/", host: to.String()}},
		{"HEAD with a path and query", func(c *fsm.HealthCheck) { c.Method, c.Path = "HEAD", "/status?full=1" }, request{method: "HEAD", uri: "/status?full=1", host: to.String()}},
		{"POST with a Host header", func(c *fsm.HealthCheck) { c.Method, c.Host = "POST", "www.example.com" }, request{method: "POST", uri: "/", host: "www.example.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantUp(t, run(t, spec(t, fsm.CheckHTTP, generous, tt.edit), CheckerConfig{}, to), "HTTP 200")
			if got := <-seen; got != tt.want {
				t.Errorf("server saw %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestHTTPCheckIsDownWhenRefused(t *testing.T) {
	r := run(t, spec(t, fsm.CheckHTTP, generous, nil), CheckerConfig{}, closedPort(t, "tcp", lo4))
	wantDown(t, r, ErrRefused, "connect: connection refused")
}

// dribble accepts connections and sends head, then body one byte per tick: slow enough
// that any per-read timeout is met, and complete after about five seconds, so a checker
// with only per-read timeouts (keepalived #1822) would wrongly pass rather than hang.
func dribble(t *testing.T, head string, body int, tick time.Duration) netip.AddrPort {
	return listen(t, lo4, func(c net.Conn) {
		if !readRequest(c) {
			return
		}
		if _, err := io.WriteString(c, head); err != nil {
			return
		}
		for range body {
			time.Sleep(tick)
			if _, err := c.Write([]byte("x")); err != nil {
				return
			}
		}
	})
}

// readRequest reads a request's head, up to its blank line.
func readRequest(c net.Conn) bool {
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return false
		}
		if line == "\r\n" {
			return true
		}
	}
}

func TestHTTPCheckFailsADribblingResponseAtItsTotalDeadline(t *testing.T) {
	t.Parallel()  // waits out timeouts
	const n = 250 // bytes, 20 ms apart: 5 s in all
	t.Run("body", func(t *testing.T) {
		to := dribble(t, fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", n), n, 20*time.Millisecond)
		r := run(t, spec(t, fsm.CheckHTTP, short, func(c *fsm.HealthCheck) { c.BodyRegex = "x" }), CheckerConfig{}, to)
		wantDown(t, r, ErrTimeout, "timeout after "+short.String()+" (read the body)")
	})
	t.Run("headers", func(t *testing.T) {
		// A header line that never ends: the status is never complete.
		to := dribble(t, "HTTP/1.1 200 OK\r\nX-Slow: ", n, 20*time.Millisecond)
		r := run(t, spec(t, fsm.CheckHTTP, short, nil), CheckerConfig{}, to)
		wantDown(t, r, ErrTimeout, "timeout after "+short.String()+" (wait for the response)")
	})
}

func TestHTTPCheckReportsAServerThatHangsUp(t *testing.T) {
	to := listen(t, lo4, func(c net.Conn) { readRequest(c) }) // then close without a word
	r := run(t, spec(t, fsm.CheckHTTP, generous, nil), CheckerConfig{}, to)
	wantDown(t, r, ErrConnection, "wait for the response")
	if strings.Contains(r.Reason, "127.0.0.1") {
		t.Errorf("reason %q should be short, without addresses", r.Reason)
	}
}
