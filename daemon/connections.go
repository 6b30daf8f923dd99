package daemon

import (
	"errors"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/director"
	"github.com/raftlvs/raftlvs/fsm"
)

// connections is this director's IPVS connection table in its wire form (GET
// /v1/connections): the data plane reads the kernel, the API only relays.
func (d *Director) connections(limit int) (*api.ConnectionList, error) {
	conns, total, err := d.plane.IPVSConnections(limit)
	if errors.Is(err, director.ErrNoConnectionTable) {
		return nil, &fsm.FieldError{Field: "path", Reason: err.Error(), Kind: fsm.ErrNotFound}
	}
	if err != nil {
		return nil, err
	}
	out := &api.ConnectionList{Director: d.opts.ID, Total: total, Connections: make([]api.Connection, len(conns))}
	for i, c := range conns {
		out.Connections[i] = api.Connection{
			Protocol: c.Protocol, Client: c.Client, Virtual: c.Virtual, Destination: c.Destination,
			State: c.State, ExpiresS: int64(c.Expires.Seconds()), PEName: c.PEName, PEData: c.PEData,
		}
	}
	return out, nil
}
