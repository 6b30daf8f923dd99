package api

import (
	"context"
	"net/http"
	"net/netip"
	"strconv"
)

// Connection is one entry of a director's IPVS connection table (ipvsadm -Lnc).
type Connection struct {
	Protocol    string         `json:"protocol"` // TCP, UDP, SCTP
	Client      netip.AddrPort `json:"client"`
	Virtual     netip.AddrPort `json:"virtual"`
	Destination netip.AddrPort `json:"destination"`
	State       string         `json:"state"`
	ExpiresS    int64          `json:"expires_s"` // seconds until the entry expires
	PEName      string         `json:"pe_name,omitempty"`
	PEData      string         `json:"pe_data,omitempty"`
}

// ConnectionList is the answer of GET /v1/connections: the answering director's own
// table (every director has one; the leader's is the one traffic goes through, the
// others' come from the sync daemon), its first entries and how many it has in all.
type ConnectionList struct {
	Director    string       `json:"director"`
	Total       int          `json:"total"`
	Connections []Connection `json:"connections"`
}

// Connection listing bounds: what GET /v1/connections returns without ?limit, and at
// most (a table can hold millions).
const (
	DefaultConnections = 10000
	MaxConnections     = 100000
)

// Connections reads the IPVS connection table of the first director of Addrs that
// answers (limit 0: DefaultConnections).
func (c *Client) Connections(ctx context.Context, limit int) (*ConnectionList, error) {
	path := "/v1/connections"
	if limit > 0 {
		path += "?limit=" + strconv.Itoa(limit)
	}
	return call[ConnectionList](ownData(ctx), c, http.MethodGet, path, nil)
}
