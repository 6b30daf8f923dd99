package apiserver

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/fsm"
)

// Read-your-writes (api/consistency.go has the client's half): every answer carries this
// director's state version, a read that asks for a version waits until the replica has
// it, and POST /v1/barrier gives the leader's.

// stampVersion adds this director's state version and cluster id to an answer that does
// not carry them yet (a forwarded write carries the leader's, after the write).
func (s *Server) stampVersion(h http.Header) {
	if h.Get(api.VersionHeader) != "" {
		return
	}
	var v uint64
	var id string
	s.store.View(func(st *fsm.State) { v, id = st.Version(), st.ClusterID() })
	h.Set(api.VersionHeader, strconv.FormatUint(v, 10))
	if id != "" {
		h.Set(api.ClusterHeader, id)
	}
}

// caughtUp holds a read until the replica has the version it asks for (MinVersionHeader),
// for at most ReadWait; then it answers 503, so that the client asks another director,
// and returns false. A version of another cluster (one rebuilt under the same
// addresses) asks for nothing here.
func (s *Server) caughtUp(w http.ResponseWriter, r *http.Request) bool {
	raw := r.Header.Get(api.MinVersionHeader)
	if raw == "" {
		return true
	}
	want, err := strconv.ParseUint(raw, 10, 64)
	if err != nil {
		s.writeError(w, r, fieldErr(api.MinVersionHeader, fsm.ErrInvalid, "%q is not a state version", raw))
		return false
	}
	var have uint64
	var id string
	s.store.View(func(st *fsm.State) { have, id = st.Version(), st.ClusterID() })
	if cluster := r.Header.Get(api.ClusterHeader); have >= want || cluster != "" && id != "" && cluster != id {
		return true
	}
	wait := cmp.Or(s.ReadWait, api.ReadWait)
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	if err := s.store.WaitVersion(ctx, want); err != nil {
		s.writeError(w, r, behindError(fmt.Sprintf("this director is behind: the read needs state version %d (the client saw it), and it did not get there within %v (%v); ask another director",
			want, wait, err)))
		return false
	}
	return true
}

// fresh serves h once the replica has the version the request asks for.
func (s *Server) fresh(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.caughtUp(w, r) {
			h(w, r)
		}
	}
}

// barrier: POST /v1/barrier, answered by the leader (a follower forwards it) once its
// state holds every write acknowledged so far (Store.ReadIndex: a heartbeat round, no
// log entry): its state version is then at least theirs.
func (s *Server) barrier(w http.ResponseWriter, r *http.Request) {
	if s.do(w, r, nil, s.store.ReadIndex) {
		var res api.BarrierResult
		s.store.View(func(st *fsm.State) { res.Version, res.ClusterID = st.Version(), st.ClusterID() })
		writeJSON(w, http.StatusOK, res)
	}
}

// behindError is a director that cannot serve a read yet: 503, and the client asks the
// next director (nothing to do with the leader, whatever ErrUnavailable's text says).
type behindError string

func (e behindError) Error() string { return string(e) }
func (e behindError) Unwrap() error { return api.ErrUnavailable }
