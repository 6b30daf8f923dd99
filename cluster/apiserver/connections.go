package apiserver

import (
	"net/http"
	"strconv"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/fsm"
)

// connections: GET /v1/connections[?limit=N], this director's IPVS connection table
// (what ipvsadm -Lnc lists here), never forwarded: each director has its own.
func (s *Server) connections(w http.ResponseWriter, r *http.Request) {
	limit := api.DefaultConnections
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > api.MaxConnections {
			s.writeError(w, r, fieldErr("limit", fsm.ErrInvalid, "%q: want 1..%d", v, api.MaxConnections))
			return
		}
		limit = n
	}
	if s.Connections == nil {
		s.writeError(w, r, fieldErr("path", fsm.ErrNotFound, "this director has no IPVS data plane (a witness): no connections to list"))
		return
	}
	list, err := s.Connections(limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}
