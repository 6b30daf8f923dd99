package realserver

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/raftlvs/raftlvs/api"
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
var ErrNoDirector = api.ErrUnreachable

// APISource answers from the directors' HTTP API (GET /v1/services/{name}); the client
// tries the next director when one does not answer.
type APISource struct {
	Client *api.Client
}

var (
	_ ServiceSource    = APISource{}
	_ RegistrationView = APISource{}
)

func (s APISource) Service(ctx context.Context, name string) (fsm.Service, error) {
	info, err := s.Client.Service(ctx, name)
	if err != nil {
		return fsm.Service{}, fmt.Errorf("get service %s: %w", name, err)
	}
	if info.Name != name {
		return fsm.Service{}, fmt.Errorf("get service %s: a director answered for %q", name, info.Name)
	}
	return info.Service, nil
}

// Drained reports true once the directors have removed the agent's real server of the
// service (or the service itself). The leader removes a leaving agent's real server only
// when its connections have ended, or after its maximum drain time, so an agent that
// waits for this keeps its VIP until established connections are done.
func (s APISource) Drained(ctx context.Context, service, agentID string, addr netip.Addr) (bool, error) {
	info, err := s.Client.Service(ctx, service)
	if errors.Is(err, fsm.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("get service %s: %w", service, err)
	}
	for _, rs := range info.RealServers {
		if rs.Addr == addr && rs.Origin == fsm.AgentOrigin(agentID) {
			return false, nil
		}
	}
	return true, nil
}
