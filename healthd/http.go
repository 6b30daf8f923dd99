package healthd

import (
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"

	"github.com/raftlvs/raftlvs/fsm"
)

// MaxBody bounds the part of a response body that a body regex or digest reads: a body
// longer than this is judged on its first MaxBody bytes.
const MaxBody = 1 << 20

// DefaultStatus is what an http check accepts when its spec names no codes.
const DefaultStatus = "200-399"

// httpCheck sends one request on a fresh connection (no keep-alive: each check proves the
// server still accepts) and judges the status, then, if asked, the body.
type httpCheck struct {
	base      base
	wellKnown uint16
	scheme    string
	method    string
	target    url.URL // path and query; the host is set per check
	host      string  // the Host header; "" is the address probed
	status    [][2]int
	regex     *regexp.Regexp
	digest    string
	client    *http.Client
}

func newHTTPCheck(b base, spec *fsm.HealthCheck, cfg CheckerConfig) (*httpCheck, error) {
	c := &httpCheck{base: b, scheme: "http", wellKnown: 80, method: http.MethodGet, host: spec.Host, digest: strings.ToLower(spec.Digest)}
	if spec.Type == fsm.CheckHTTPS {
		c.scheme, c.wellKnown = "https", 443
	}
	if spec.Method != "" {
		c.method = strings.ToUpper(spec.Method)
	}
	path := spec.Path
	if path == "" {
		path = "/"
	}
	u, err := url.Parse(path)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return nil, fmt.Errorf("compile health check: path %q is not a request path: %w", path, ErrBadCheck)
	}
	c.target = url.URL{Scheme: c.scheme, Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}
	codes := spec.Status
	if len(codes) == 0 {
		codes = []string{DefaultStatus}
	}
	for _, s := range codes {
		lo, hi, err := fsm.ParseStatusRange(s)
		if err != nil {
			return nil, fmt.Errorf("compile health check: status: %v: %w", err, ErrBadCheck)
		}
		c.status = append(c.status, [2]int{lo, hi})
	}
	if spec.BodyRegex != "" {
		if c.regex, err = regexp.Compile(spec.BodyRegex); err != nil {
			return nil, fmt.Errorf("compile health check: body_regex: %v: %w", err, ErrBadCheck)
		}
	}
	transport := &http.Transport{
		Proxy: nil, // never the environment's proxy: the real server itself is checked
		DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
			return c.base.dialer(ctx, &c.base.tcp, network, address)
		},
		DisableKeepAlives:      true,
		DisableCompression:     true, // the digest is of the body as served
		MaxResponseHeaderBytes: 64 << 10,
	}
	if c.scheme == "https" {
		// ServerName: the SNI, else the Host header's name, else (left empty) the
		// transport's choice, the address probed, which a verified certificate must name.
		name := spec.SNI
		if name == "" {
			name = hostOnly(spec.Host)
		}
		transport.TLSClientConfig = &tls.Config{
			ServerName:         name,
			InsecureSkipVerify: !spec.TLSVerify, // real servers are probed by address, as keepalived's SSL_GET
			RootCAs:            cfg.TLSRoots,
		}
	}
	c.client = &http.Client{
		Transport:     transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

func hostOnly(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return host
}

// The steps of a request, for the reason of a timeout or an error.
var httpSteps = [...]string{"connect", "TLS handshake", "send the request", "wait for the response"}

const (
	stepConnect int32 = iota
	stepHandshake
	stepSend
	stepWait
)

func (c *httpCheck) check(ctx context.Context, to netip.AddrPort) Result {
	to, _ = withPort(to, c.wellKnown)
	if r, bad := c.base.sourceMismatch(to); bad {
		return r
	}
	u := c.target
	u.Host = to.String()
	var step atomic.Int32
	afterConnect := stepSend
	if c.scheme == "https" {
		afterConnect = stepHandshake
	}
	trace := &httptrace.ClientTrace{
		ConnectDone: func(_, _ string, err error) {
			if err == nil {
				step.Store(afterConnect)
			}
		},
		TLSHandshakeDone: func(_ tls.ConnectionState, err error) {
			if err == nil {
				step.Store(stepSend)
			}
		},
		WroteRequest: func(i httptrace.WroteRequestInfo) {
			if i.Err == nil {
				step.Store(stepWait)
			}
		},
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), c.method, u.String(), nil)
	if err != nil {
		return down(ErrBadCheck, err, "bad request: %v", err)
	}
	if c.host != "" {
		req.Host = c.host
	}
	req.Header.Set("User-Agent", "raftlvs-healthd")
	resp, err := c.client.Do(req)
	if err != nil {
		at := step.Load()
		r := failed(ctx, httpSteps[at], err, c.base.timeout)
		if at == stepHandshake && errors.Is(r.Err, ErrConnection) {
			// Whatever broke the handshake (a plain-HTTP server, a reset) is a TLS failure.
			r = down(ErrTLS, err, "TLS: %s", describe(err))
		}
		return r
	}
	defer resp.Body.Close()
	if !c.statusOK(resp.StatusCode) {
		return down(ErrStatus, nil, "HTTP %d", resp.StatusCode)
	}
	if c.regex != nil || c.digest != "" {
		// The request's context bounds the body too: a server dribbling it fails at the
		// check's deadline like any other (keepalived #1822).
		body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
		if err != nil {
			return failed(ctx, "read the body", err, c.base.timeout)
		}
		if c.regex != nil && !c.regex.Match(body) {
			return down(ErrContent, nil, "body does not match regex")
		}
		if c.digest != "" {
			sum := md5.Sum(body)
			if got := hex.EncodeToString(sum[:]); got != c.digest {
				return down(ErrContent, nil, "body MD5 %s, want %s", got, c.digest)
			}
		}
	}
	return up(fmt.Sprintf("HTTP %d", resp.StatusCode))
}

func (c *httpCheck) statusOK(code int) bool {
	for _, r := range c.status {
		if code >= r[0] && code <= r[1] {
			return true
		}
	}
	return false
}
