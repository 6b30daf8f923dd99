package fsm

import (
	"cmp"
	"net"
	"slices"
)

// Director is a member of the Raft cluster and where to reach it. Followers use it to
// forward writes to the leader's API; agents use it to find the API.
type Director struct {
	ID         string `json:"id"`
	RaftAddr   string `json:"raft_addr"`
	APIAddr    string `json:"api_addr"`
	GossipAddr string `json:"gossip_addr,omitempty"`
	// Witness: a Raft-only voter (no IPVS, no VIPs) that keeps a majority; a planned
	// leadership transfer never picks it. Entries recorded before the field existed
	// decode as false.
	Witness bool `json:"witness,omitempty"`
}

// RegisterDirector records (or updates) a director's addresses.
type RegisterDirector struct {
	Director Director `json:"director"`
}

// RemoveDirector forgets a director that left the cluster.
type RemoveDirector struct {
	ID string `json:"id"`
}

const (
	TypeRegisterDirector CommandType = 11
	TypeRemoveDirector   CommandType = 12
)

func (RegisterDirector) Type() CommandType { return TypeRegisterDirector }
func (RemoveDirector) Type() CommandType   { return TypeRemoveDirector }

// Director returns the director with this id.
func (s *State) Director(id string) (Director, bool) {
	d, ok := s.directors[id]
	return d, ok
}

// Directors returns all directors by id.
func (s *State) Directors() []Director {
	out := make([]Director, 0, len(s.directors))
	for _, d := range s.directors {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b Director) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

func (c RegisterDirector) check(s *State) error {
	d := c.Director
	if err := validateName("id", d.ID); err != nil {
		return err
	}
	// A slice, not a map: the same bad entry must always name the same field.
	for _, a := range []struct{ field, addr string }{{"raft_addr", d.RaftAddr}, {"api_addr", d.APIAddr}} {
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			return invalid(a.field, "%q is not host:port", a.addr)
		}
	}
	if d.GossipAddr != "" {
		if _, _, err := net.SplitHostPort(d.GossipAddr); err != nil {
			return invalid("gossip_addr", "%q is not host:port", d.GossipAddr)
		}
	}
	return nil
}

func (c RegisterDirector) mutate(s *State) { s.setDirector(c.Director) }

func (c RemoveDirector) check(s *State) error {
	if _, ok := s.directors[c.ID]; !ok {
		return notFound("id", "no director %s", c.ID)
	}
	return nil
}

func (c RemoveDirector) mutate(s *State) { s.dropDirector(c.ID) }
