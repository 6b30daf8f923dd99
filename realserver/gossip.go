package realserver

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/cluster/gossip"
	"github.com/raftlvs/raftlvs/fsm"
)

// PoolDirectors is the agent's way to the cluster: the API of the directors the gossip
// pool lists alive, at the addresses their metadata gives. It is a ServiceSource and a
// RegistrationView.
type PoolDirectors struct {
	Pool *gossip.Pool
	// Client, if set, shapes each API client (tests shorten its timeout).
	Client func(addrs ...string) *api.Client
}

var (
	_ ServiceSource    = (*PoolDirectors)(nil)
	_ RegistrationView = (*PoolDirectors)(nil)
)

// apiAddrs are the API addresses of the directors alive in the pool, sorted.
func (p *PoolDirectors) apiAddrs() []string {
	var addrs []string
	for _, m := range p.Pool.Members() {
		if m.State == gossip.StateAlive && m.Meta.Role == gossip.RoleDirector && m.Meta.APIAddr != "" {
			addrs = append(addrs, m.Meta.APIAddr)
		}
	}
	slices.Sort(addrs)
	return addrs
}

func (p *PoolDirectors) source() (APISource, error) {
	addrs := p.apiAddrs()
	if len(addrs) == 0 {
		return APISource{}, fmt.Errorf("no director in the gossip pool yet: %w", ErrNoDirector)
	}
	slices.Sort(addrs)
	newClient := p.Client
	if newClient == nil {
		newClient = api.NewClient
	}
	return APISource{Client: newClient(addrs...)}, nil
}

func (p *PoolDirectors) Service(ctx context.Context, name string) (fsm.Service, error) {
	src, err := p.source()
	if err != nil {
		return fsm.Service{}, err
	}
	return src.Service(ctx, name)
}

func (p *PoolDirectors) Drained(ctx context.Context, service, agentID string, addr netip.Addr) (bool, error) {
	src, err := p.source()
	if err != nil {
		return false, err
	}
	return src.Drained(ctx, service, agentID, addr)
}

// PoolMembership is the agent's metadata in the gossip pool: what it serves, and whether
// it is draining.
type PoolMembership struct {
	pool *gossip.Pool
	mu   sync.Mutex
	meta gossip.Meta
}

// NewPoolMembership is the membership of an agent that joined pool with meta.
func NewPoolMembership(pool *gossip.Pool, meta gossip.Meta) *PoolMembership {
	return &PoolMembership{pool: pool, meta: meta}
}

// metaTimeout bounds how long a metadata update waits to be gossiped.
const metaTimeout = 5 * time.Second

func (p *PoolMembership) SetDraining(draining bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.meta.Draining == draining {
		return nil
	}
	m := p.meta
	m.Draining = draining
	if err := p.pool.UpdateMeta(m, metaTimeout); err != nil {
		return fmt.Errorf("announce draining=%t: %w", draining, err)
	}
	p.meta = m
	return nil
}

func (p *PoolMembership) Leave(timeout time.Duration) error { return p.pool.Leave(timeout) }

// AgentMeta is the gossip metadata an agent joins with: its address and services, and
// draining until its host is configured, so no director sends traffic to a real server
// that would drop it.
func AgentMeta(cfg Config) gossip.Meta {
	meta := gossip.Meta{Role: gossip.RoleAgent, ID: cfg.ID, Addr: cfg.Addr.Unmap(), Draining: true}
	for _, s := range cfg.Services {
		meta.Services = append(meta.Services, gossip.ServicePort{Service: s.Name, Port: s.Port, Weight: s.Weight})
	}
	return meta
}
