package api

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// DefaultClientTimeout bounds one call, its retries included.
const DefaultClientTimeout = 30 * time.Second

// dialTimeout bounds each connection attempt, so that one director that drops packets
// does not spend the whole call's time before the next is tried.
const dialTimeout = 2 * time.Second

// Retry pacing: a write no leader took, or a read no director could serve, is sent again
// after these pauses (doubling) until the call's timeout.
const (
	retryMin = 100 * time.Millisecond
	retryMax = 2 * time.Second
)

// maxResponseBytes bounds what the client reads of an answer (a full state dump fits).
const maxResponseBytes = 64 << 20

// HopHeader counts how many times a write was forwarded. A director that is not the
// leader forwards a request only while the count is below MaxForwardHops, so a stale view
// of the leader (two directors each naming the other) ends in a 503 rather than a loop.
const HopHeader = "X-Raftlvs-Forwarded"

// MaxForwardHops allows one forward, plus one more when leadership moved meanwhile.
const MaxForwardHops = 2

// BatchTimeout bounds the commit of one batch on the leader: a restore of thousands of
// services is one large log entry that every director must store and apply.
const BatchTimeout = 2 * time.Minute

// Client talks to the API of any director. It tries Addrs in order and moves on only
// when a director could not take the request: it was unreachable (the request never
// left), or answered 503 (it has not caught up, or no leader took the write: nothing
// was logged). It goes round the list again, with back-off, until Timeout. An answer
// (a 4xx, or a 504 "outcome unknown") ends the call: a write that may have been applied
// is never sent twice blindly.
type Client struct {
	Addrs []string // host:port or http://host:port
	// HTTP carries the requests; its own Timeout, if set, bounds each attempt.
	HTTP *http.Client
	// Timeout bounds a whole call, retries included (DefaultClientTimeout when 0). A
	// sooner ctx deadline wins.
	Timeout time.Duration
	// Token, if set, is sent as Authorization: Bearer (an operator token, or a join
	// token for RequestCertificate). A client certificate in HTTP's TLS config, if
	// any, is what the director goes by when both are there.
	Token string
	// HTTPS makes addresses without a scheme https:// (NewTLSClient sets it).
	HTTPS bool
	// Consistent makes every read see every write acknowledged before it, anyone's: the
	// client first asks the leader for its state version (Barrier), then reads at that
	// version or later. Without it, reads still see this client's own writes and never
	// go back in time (see consistency.go), but may miss another client's latest.
	Consistent bool

	seen versionClock
}

// NewClient returns a client for these director addresses.
func NewClient(addrs ...string) *Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext
	return &Client{Addrs: addrs, HTTP: &http.Client{Transport: t}}
}

// NewTLSClient returns a client that speaks HTTPS with cfg (the tls.Config comes from
// package pki: a client certificate, a trusted CA, or the CA a token pins).
func NewTLSClient(cfg *tls.Config, addrs ...string) *Client {
	c := NewClient(addrs...)
	c.HTTP.Transport.(*http.Transport).TLSClientConfig = cfg
	c.HTTPS = true
	return c
}

// Status returns GET /v1/status.
// With counters, the director adds the IPVS counters of every service (one kernel dump
// per service: slow on a large table).
func (c *Client) Status(ctx context.Context, counters bool) (*StatusResponse, error) {
	if counters {
		return call[StatusResponse](ctx, c, http.MethodGet, "/v1/status?counters=true", nil)
	}
	return call[StatusResponse](ctx, c, http.MethodGet, "/v1/status", nil)
}

// State returns the whole replicated state (GET /v1/state).
func (c *Client) State(ctx context.Context) (*StateDump, error) {
	return call[StateDump](ctx, c, http.MethodGet, "/v1/state", nil)
}

// Services lists the services with their real servers.
func (c *Client) Services(ctx context.Context) ([]ServiceInfo, error) {
	out, err := call[ServiceList](ctx, c, http.MethodGet, "/v1/services", nil)
	if err != nil {
		return nil, err
	}
	return out.Services, nil
}

// Service returns one service with its real servers.
func (c *Client) Service(ctx context.Context, name string) (*ServiceInfo, error) {
	return call[ServiceInfo](ctx, c, http.MethodGet, servicePath(name), nil)
}

// AddService creates a service and returns it as committed (defaults filled in).
func (c *Client) AddService(ctx context.Context, svc fsm.Service) (*ServiceInfo, error) {
	return call[ServiceInfo](ctx, c, http.MethodPost, "/v1/services", svc)
}

// EditService replaces the settings of the named service.
func (c *Client) EditService(ctx context.Context, name string, svc fsm.Service) (*ServiceInfo, error) {
	return call[ServiceInfo](ctx, c, http.MethodPut, servicePath(name), svc)
}

// RemoveService deletes a service and its real servers.
func (c *Client) RemoveService(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, servicePath(name), nil, nil)
}

// AddRealServer adds a real server to the named service.
func (c *Client) AddRealServer(ctx context.Context, service string, req RealServerRequest) (*fsm.RealServer, error) {
	return call[fsm.RealServer](ctx, c, http.MethodPost, servicePath(service)+"/servers", req)
}

// EditRealServer replaces the settings of one real server.
func (c *Client) EditRealServer(ctx context.Context, service string, addr netip.Addr, port uint16, req RealServerRequest) (*fsm.RealServer, error) {
	return call[fsm.RealServer](ctx, c, http.MethodPut, realServerPath(service, addr, port), req)
}

// RemoveRealServer deletes one real server.
func (c *Client) RemoveRealServer(ctx context.Context, service string, addr netip.Addr, port uint16) error {
	return c.do(ctx, http.MethodDelete, realServerPath(service, addr, port), nil, nil)
}

// Batch applies commands atomically.
func (c *Client) Batch(ctx context.Context, cmds []BatchCommand) (*BatchResult, error) {
	return call[BatchResult](ctx, c, http.MethodPost, "/v1/batch", BatchRequest{Commands: cmds})
}

// CheckBatch has the leader check commands as Batch would apply them, and apply none:
// the error is the one Batch would return now.
func (c *Client) CheckBatch(ctx context.Context, cmds []BatchCommand) (*BatchResult, error) {
	return call[BatchResult](ctx, c, http.MethodPost, "/v1/batch?dry_run=true", BatchRequest{Commands: cmds})
}

// Join adds a director to the cluster.
func (c *Client) Join(ctx context.Context, d fsm.Director) error {
	return c.do(ctx, http.MethodPost, "/v1/join", d, nil)
}

// Leave removes the director id from the cluster.
func (c *Client) Leave(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/v1/leave", LeaveRequest{ID: id}, nil)
}

// TransferLeadership moves leadership to id, or to a voter Raft picks when id is empty.
func (c *Client) TransferLeadership(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/v1/leadership/transfer", TransferRequest{ID: id}, nil)
}

// VIPs lists every VIP the leader holds, declared or a service's.
func (c *Client) VIPs(ctx context.Context) ([]VIPInfo, error) {
	list, err := call[VIPList](ctx, c, http.MethodGet, "/v1/vips", nil)
	if err != nil {
		return nil, err
	}
	return list.VIPs, nil
}

// AddVIP declares a VIP without a service.
func (c *Client) AddVIP(ctx context.Context, req VIPRequest) (*VIPInfo, error) {
	return call[VIPInfo](ctx, c, http.MethodPost, "/v1/vips", req)
}

// RemoveVIP forgets a declared VIP.
func (c *Client) RemoveVIP(ctx context.Context, addr netip.Addr) error {
	return c.do(ctx, http.MethodDelete, "/v1/vips/"+url.PathEscape(addr.String()), nil, nil)
}

// call does one request whose answer decodes into a T.
func call[T any](ctx context.Context, c *Client, method, path string, in any) (*T, error) {
	var out T
	if err := c.do(ctx, method, path, in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func servicePath(name string) string { return "/v1/services/" + url.PathEscape(name) }

func realServerPath(service string, addr netip.Addr, port uint16) string {
	return servicePath(service) + "/servers/" + url.PathEscape(addr.WithZone("").String()) + "/" + strconv.Itoa(int(port))
}

// extraTimeKey carries time a call may take on top of the client's Timeout: a long poll
// waits by design.
type extraTimeKey struct{}

// ownDataKey marks a read of one director's own data (its timeline, its checks, its
// kernel's connections, the leader's health views), not of the replicated state: a
// Consistent client has nothing to confirm with the leader for it, and it is worth
// reading without one.
type ownDataKey struct{}

func ownData(ctx context.Context) context.Context { return context.WithValue(ctx, ownDataKey{}, true) }

// consistentKey makes one read consistent whatever the client's Consistent says: a read
// that decides what the client does next (was this commit applied?).
type consistentKey struct{}

func consistent(ctx context.Context) context.Context {
	return context.WithValue(ctx, consistentKey{}, true)
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	contentType := "application/json"
	switch in := in.(type) {
	case nil:
	case rawBody:
		body, contentType = in.data, in.contentType
	default:
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
	}
	if len(c.Addrs) == 0 {
		return errors.New("no director API address given")
	}
	extra, _ := ctx.Value(extraTimeKey{}).(time.Duration)
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(c.Timeout, DefaultClientTimeout)+extra)
	defer cancel()
	own, _ := ctx.Value(ownDataKey{}).(bool)
	forced, _ := ctx.Value(consistentKey{}).(bool)
	if method == http.MethodGet && (c.Consistent || forced) && !own {
		if err := c.confirm(ctx); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return c.exchange(ctx, method, path, body, contentType, out)
}

// exchange sends one request to the directors in turn, until one answers for good.
func (c *Client) exchange(ctx context.Context, method, path string, body []byte, contentType string, out any) error {
	// A barrier changes nothing: sent and unanswered, it is asked again like a read.
	write := method != http.MethodGet && path != barrierPath
	var errs []error
	unavailable := false // some director answered 503 in some round
	for wait := retryMin; ; wait = min(2*wait, retryMax) {
		errs = errs[:0]
		round503 := false
		for _, addr := range c.Addrs {
			err := c.try(ctx, c.baseURL(addr)+path, method, body, contentType, out)
			switch next, why := nextStep(write, err); next {
			case done:
				return err
			case unknownOutcome:
				return fmt.Errorf("%s %s: %w: %w", method, path, ErrOutcomeUnknown, why)
			case tryUnavailable:
				unavailable, round503 = true, true
			}
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
		}
		// A read that found every director unreachable fails at once; what may recover
		// (no leader yet, a director catching up, a write no director could take) is
		// tried again until the timeout.
		if !write && !round503 && ctx.Err() == nil {
			return fmt.Errorf("%w: %w", ErrUnreachable, errors.Join(errs...))
		}
		select {
		case <-ctx.Done():
			kind := ErrUnreachable
			switch {
			case unavailable && !write:
				kind = errReadUnavailable
			case unavailable:
				kind = ErrUnavailable
			}
			return fmt.Errorf("%w (gave up: %w): %w", kind, ctx.Err(), errors.Join(errs...))
		case <-time.After(wait):
		}
	}
}

// step is what the client does after one attempt.
type step int

const (
	done           step = iota // success, or an answer that ends the call
	tryNext                    // the request never left: the next director, then again
	tryUnavailable             // a 503: nothing was done; the next director, then again
	unknownOutcome             // a write that may have been applied
)

func nextStep(write bool, err error) (step, error) {
	if err == nil {
		return done, nil
	}
	var hs *HandshakeError
	if errors.As(err, &hs) {
		return done, err // every director would refuse these credentials alike
	}
	var apiErr *Error
	if errors.As(err, &apiErr) {
		if errors.Is(err, ErrUnavailable) {
			return tryUnavailable, err
		}
		return done, err // the cluster's verdict, including a 504 outcome unknown
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return tryNext, err
	}
	if write {
		// Sent, and no answer (a reset, a timeout): it may have been committed.
		return unknownOutcome, err
	}
	return tryNext, err
}

func (c *Client) try(ctx context.Context, url, method string, body []byte, contentType string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	if method == http.MethodGet {
		c.stampRead(req.Header)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	var gotConn atomic.Bool
	req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { gotConn.Store(true) },
	}))
	resp, err := hc.Do(req)
	if err != nil {
		if !gotConn.Load() && ctx.Err() == nil && !isDialOrTimeout(err) {
			return &HandshakeError{Addr: req.URL.Host, Err: err}
		}
		return err // *url.Error already names method and URL
	}
	defer resp.Body.Close()
	c.observeAnswer(resp.Header)
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, url, err)
	}
	if resp.StatusCode >= 300 {
		return errorFromResponse(resp.StatusCode, data)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, url, err)
	}
	return nil
}

// HandshakeError is a connection to a director that opened and then failed before the
// request went out: the TLS handshake (a certificate refused on either side, a CA that
// does not match, plain HTTP on one end and HTTPS on the other). The client does not
// try the other directors: they would refuse the same credentials.
type HandshakeError struct {
	Addr string
	Err  error
}

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("connect to director %s: %v (TLS handshake refused: check the certificate, CA or token, and that client and director agree on --insecure)", e.Addr, e.Err)
}

func (e *HandshakeError) Unwrap() error { return e.Err }

func isDialOrTimeout(err error) bool {
	var opErr *net.OpError
	var ne net.Error
	return errors.As(err, &opErr) && opErr.Op == "dial" || errors.As(err, &ne) && ne.Timeout()
}

func (c *Client) baseURL(addr string) string {
	if strings.HasPrefix(addr, "http://") || strings.HasPrefix(addr, "https://") {
		return strings.TrimSuffix(addr, "/")
	}
	if c.HTTPS {
		return "https://" + addr
	}
	return "http://" + addr
}
