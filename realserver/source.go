package realserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// ServiceSource tells the agent what the cluster says a service is. A service the cluster
// does not know wraps fsm.ErrNotFound.
type ServiceSource interface {
	Service(ctx context.Context, name string) (fsm.Service, error)
}

// RegistrationView tells the agent whether the directors have stopped sending new
// connections to its real server of a service: it is draining, or gone.
type RegistrationView interface {
	Drained(ctx context.Context, service, agentID string, addr netip.Addr) (bool, error)
}

// Membership is the agent's side of the gossip pool: its metadata tells the directors'
// leader which real servers to register, and whether they are draining.
type Membership interface {
	SetDraining(draining bool) error
	Leave(timeout time.Duration) error
}

// ErrNoDirector means no director API answered.
var ErrNoDirector = errors.New("no director answered")

// HTTPServiceSource asks the directors' HTTP API, GET /v1/services/{name}, trying each
// director in turn on a connection error or a 5xx (a director without a leader), and
// sticking to the last one that answered.
type HTTPServiceSource struct {
	Directors []string     // API addresses, host:port
	Client    *http.Client // nil: a client with a 5 s timeout

	mu   sync.Mutex
	next int
}

// serviceResponse is the body of GET /v1/services/{name}.
type serviceResponse struct {
	Service     fsm.Service      `json:"service"`
	RealServers []fsm.RealServer `json:"real_servers"`
}

const maxResponse = 4 << 20

var defaultClient = &http.Client{Timeout: 5 * time.Second}

func (s *HTTPServiceSource) Service(ctx context.Context, name string) (fsm.Service, error) {
	r, err := s.get(ctx, name)
	if err != nil {
		return fsm.Service{}, err
	}
	return r.Service, nil
}

// Drained reports true once the agent's real server of the service is draining or gone,
// or the service itself is gone.
func (s *HTTPServiceSource) Drained(ctx context.Context, service, agentID string, addr netip.Addr) (bool, error) {
	r, err := s.get(ctx, service)
	if errors.Is(err, fsm.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	for _, rs := range r.RealServers {
		if rs.Addr == addr && rs.Origin == fsm.AgentOrigin(agentID) && rs.Admin != fsm.Draining {
			return false, nil
		}
	}
	return true, nil
}

func (s *HTTPServiceSource) get(ctx context.Context, name string) (serviceResponse, error) {
	if len(s.Directors) == 0 {
		return serviceResponse{}, fmt.Errorf("get service %s: no director addresses: %w", name, ErrNoDirector)
	}
	s.mu.Lock()
	start := s.next
	s.mu.Unlock()
	var errs []error
	for i := range s.Directors {
		idx := (start + i) % len(s.Directors)
		r, tryNext, err := s.getFrom(ctx, s.Directors[idx], name)
		if !tryNext {
			s.mu.Lock()
			s.next = idx
			s.mu.Unlock()
			return r, err
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return serviceResponse{}, fmt.Errorf("get service %s: %w: %w", name, ErrNoDirector, errors.Join(errs...))
}

// getFrom asks one director; tryNext says the next one should be asked instead.
func (s *HTTPServiceSource) getFrom(ctx context.Context, director, name string) (r serviceResponse, tryNext bool, err error) {
	u := url.URL{Scheme: "http", Host: director, Path: "/v1/services/" + name}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return r, false, fmt.Errorf("get service %s: %w", name, err)
	}
	client := s.Client
	if client == nil {
		client = defaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return r, true, fmt.Errorf("%s: %w", director, err)
	}
	defer resp.Body.Close()
	body := io.LimitReader(resp.Body, maxResponse)
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return r, false, fmt.Errorf("service %s (asked %s): %w", name, director, fsm.ErrNotFound)
	case resp.StatusCode >= 500:
		return r, true, fmt.Errorf("%s: %s", director, resp.Status)
	case resp.StatusCode != http.StatusOK:
		msg, _ := io.ReadAll(io.LimitReader(body, 512))
		return r, false, fmt.Errorf("get service %s from %s: %s: %s", name, director, resp.Status, msg)
	}
	if err := json.NewDecoder(body).Decode(&r); err != nil {
		return r, false, fmt.Errorf("decode service %s from %s: %w", name, director, err)
	}
	if r.Service.Name != name {
		return r, false, fmt.Errorf("director %s answered for service %q, not %q", director, r.Service.Name, name)
	}
	return r, false, nil
}
