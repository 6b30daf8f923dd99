package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// DefaultClientTimeout bounds one request, a leadership transfer included.
const DefaultClientTimeout = 30 * time.Second

// maxResponseBytes bounds what the client reads of an answer (a full state dump fits).
const maxResponseBytes = 64 << 20

// Client talks to the API of any director. It tries Addrs in order and moves to the next
// only when a director cannot be reached, never on an answer (a 4xx is the cluster's verdict).
type Client struct {
	Addrs []string // host:port or http://host:port
	HTTP  *http.Client

	hops int // sent as HopHeader when set: how far the request counts as forwarded already
}

// NewClient returns a client for these director addresses.
func NewClient(addrs ...string) *Client {
	return &Client{Addrs: addrs, HTTP: &http.Client{Timeout: DefaultClientTimeout}}
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

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
	}
	if len(c.Addrs) == 0 {
		return errors.New("no director API address given")
	}
	var errs []error
	for _, addr := range c.Addrs {
		err := c.try(ctx, baseURL(addr)+path, method, body, out)
		if err == nil {
			return nil
		}
		var apiErr *Error
		if ctx.Err() != nil || !retryable(method, err) || errors.As(err, &apiErr) && !errors.Is(err, ErrUnavailable) {
			return err
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("%w: %w", ErrUnreachable, errors.Join(errs...))
}

func (c *Client) try(ctx context.Context, url, method string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.hops > 0 {
		req.Header.Set(HopHeader, strconv.Itoa(c.hops))
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: DefaultClientTimeout}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err // *url.Error already names method and URL
	}
	defer resp.Body.Close()
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

// retryable says whether another director may be tried after err. A read may always be
// retried; a write only when it surely never left (the connection was refused), since a
// write that timed out may have been committed.
func retryable(method string, err error) bool {
	if method == http.MethodGet {
		return true // including a 503 from a director that has not caught up
	}
	if errors.Is(err, ErrUnavailable) {
		return false // the write may have been forwarded: its fate is the leader's
	}
	var opErr *net.OpError
	return errors.As(err, &opErr) && opErr.Op == "dial"
}

func baseURL(addr string) string {
	if strings.HasPrefix(addr, "http://") || strings.HasPrefix(addr, "https://") {
		return strings.TrimSuffix(addr, "/")
	}
	return "http://" + addr
}
