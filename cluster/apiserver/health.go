package apiserver

import (
	"fmt"
	"net/http"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/fsm"
)

// HealthHooks connect the API to a full director's health checks (a witness has none).
type HealthHooks struct {
	// Report hands a director's view to this director's leader duty; false: the duty
	// does not run here (this director does not lead, or not yet).
	Report func(api.HealthReport) bool
	// Views is what the leader duty decides from.
	Views func() api.HealthViews
	// Checks are this director's own checks.
	Checks func() api.HealthChecks
}

func (s *Server) healthRoutes() {
	s.mux.HandleFunc("POST /v1/health/views", s.reportHealth)
	s.mux.HandleFunc("GET /v1/health/views", s.healthViews)
	s.mux.HandleFunc("GET /v1/health", s.healthChecks)
}

// reportHealth: POST /v1/health/views, a director's view for the leader. A follower
// forwards it; a view is a snapshot, so a lost one costs nothing but a period.
func (s *Server) reportHealth(w http.ResponseWriter, r *http.Request) {
	var rep api.HealthReport
	body, err := decodeRequest(r, api.MaxBatchBodyBytes, &rep)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := fsm.ValidateName(rep.Director); err != nil {
		s.writeError(w, r, fieldErr("director", fsm.ErrInvalid, "%v", err))
		return
	}
	switch {
	case !s.store.IsLeader():
		s.forward(w, r, body)
	case s.Health == nil || !s.Health.Report(rep):
		// Not worth a warning: the sender tries again within a report interval.
		writeJSON(w, http.StatusServiceUnavailable, api.ErrorBody{Error: "this leader does not aggregate health yet", Code: api.CodeUnavailable})
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// healthViews: GET /v1/health/views, answered by the leader (a follower forwards it).
func (s *Server) healthViews(w http.ResponseWriter, r *http.Request) {
	switch {
	case !s.store.IsLeader():
		s.forward(w, r, nil)
	case s.Health == nil:
		s.writeError(w, r, fmt.Errorf("this leader does not aggregate health yet: %w", api.ErrUnavailable))
	default:
		writeJSON(w, http.StatusOK, s.Health.Views())
	}
}

// healthChecks: GET /v1/health, this director's own checks.
func (s *Server) healthChecks(w http.ResponseWriter, r *http.Request) {
	if s.Health == nil {
		s.writeError(w, r, fieldErr("path", fsm.ErrNotFound, "this director runs no health checks (a witness)"))
		return
	}
	writeJSON(w, http.StatusOK, s.Health.Checks())
}
