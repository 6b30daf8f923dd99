package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/fsm"
)

// join: POST /v1/join {"id","raft_addr","api_addr","gossip_addr"} adds a director as a voter.
func (s *Server) join(w http.ResponseWriter, r *http.Request) {
	var d fsm.Director
	body, err := decodeRequest(r, api.MaxBodyBytes, &d)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// The registration the node will log must pass the state's checks; say so now, with
	// the field, rather than after a Raft configuration change.
	s.store.View(func(st *fsm.State) { err = st.Check(fsm.RegisterDirector{Director: d}) })
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.do(w, r, body, func(ctx context.Context) error { return s.store.Join(ctx, d) }) {
		w.WriteHeader(http.StatusNoContent)
	}
}

// LeaderHandoverTimeout bounds how long a leader asked to leave waits to learn its successor.
const LeaderHandoverTimeout = 10 * time.Second

// leave: POST /v1/leave {"id"} removes a director. A leader removing itself would drop out
// mid-commit, so it first hands leadership over and forwards the request to its successor.
func (s *Server) leave(w http.ResponseWriter, r *http.Request) {
	var req api.LeaveRequest
	body, err := decodeRequest(r, api.MaxBodyBytes, &req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.ID == "" {
		s.writeError(w, r, fieldErr("id", fsm.ErrInvalid, "required"))
		return
	}
	if s.store.IsLeader() && req.ID == s.store.Status().NodeID {
		if err := s.handOver(r.Context()); err != nil {
			s.writeError(w, r, fmt.Errorf("leave %s: %w", req.ID, err))
			return
		}
		s.forward(w, r, body)
		return
	}
	if s.do(w, r, body, func(ctx context.Context) error { return s.removeDirector(ctx, req.ID) }) {
		w.WriteHeader(http.StatusNoContent)
	}
}

// handOver transfers leadership away and waits, bounded, until another leader is known.
func (s *Server) handOver(ctx context.Context) error {
	if err := s.store.TransferLeadership(ctx, ""); err != nil {
		return fmt.Errorf("transfer leadership before leaving: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, LeaderHandoverTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if !s.store.IsLeader() {
			if addr, err := s.store.LeaderAPIAddr(); err == nil && addr != "" {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no new leader after transferring leadership: %w", api.ErrUnavailable)
		case <-tick.C:
		}
	}
}

// transfer: POST /v1/leadership/transfer {"id"}; no body or no id lets Raft choose.
func (s *Server) transfer(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r, api.MaxBodyBytes, true)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req api.TransferRequest
	if len(body) > 0 {
		if err := decodeJSON(body, &req); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	if s.do(w, r, body, func(ctx context.Context) error { return s.store.TransferLeadership(ctx, req.ID) }) {
		w.WriteHeader(http.StatusNoContent)
	}
}
