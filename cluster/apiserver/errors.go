package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/cluster"
	"github.com/raftlvs/raftlvs/fsm"
)

// classify maps an error to its HTTP status and api code. A write that reached the log
// but got no verdict (leadership lost, the commit timed out) is 504 outcome_unknown, told
// apart from 503 unavailable (nothing was logged: the client may send it again).
func classify(err error) (int, string) {
	if status, code, ok := authError(err); ok {
		return status, code
	}
	switch {
	case errors.Is(err, fsm.ErrInvalid):
		return http.StatusBadRequest, api.CodeInvalid
	case errors.Is(err, fsm.ErrNotFound):
		return http.StatusNotFound, api.CodeNotFound
	case errors.Is(err, fsm.ErrExists):
		return http.StatusConflict, api.CodeExists
	case errors.Is(err, fsm.ErrConflict):
		return http.StatusConflict, api.CodeConflict
	case errors.Is(err, api.ErrTooLarge):
		return http.StatusRequestEntityTooLarge, api.CodeTooLarge
	case errors.Is(err, api.ErrMethodNotAllowed):
		return http.StatusMethodNotAllowed, api.CodeMethod
	case errors.Is(err, cluster.ErrDiskFull):
		return http.StatusInsufficientStorage, api.CodeDiskFull
	case outcomeUnknown(err):
		return http.StatusGatewayTimeout, api.CodeOutcomeUnknown
	case unavailable(err):
		return http.StatusServiceUnavailable, api.CodeUnavailable
	}
	return http.StatusInternalServerError, api.CodeInternal
}

// outcomeUnknown reports errors after which a write may or may not take effect.
func outcomeUnknown(err error) bool {
	return errors.Is(err, api.ErrOutcomeUnknown) || errors.Is(err, cluster.ErrLeadershipLost) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// unavailable reports errors that mean "no leader can take this write now" and that
// nothing was logged: the caller may send it again.
func unavailable(err error) bool {
	return errors.Is(err, api.ErrUnavailable) || errors.Is(err, cluster.ErrNotLeader) ||
		errors.Is(err, cluster.ErrNoLeader) || errors.Is(err, cluster.ErrClosed)
}

func isNotLeader(err error) bool { return errors.Is(err, cluster.ErrNotLeader) }

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code := classify(err)
	body := api.ErrorBody{Error: err.Error(), Code: code}
	var fe *fsm.FieldError
	if errors.As(err, &fe) {
		body.Field = fe.Field
	}
	level := s.log.Debug
	if status >= 500 {
		level = s.log.Warn
	}
	level("api request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	if status == http.StatusRequestEntityTooLarge {
		// The rest of the body is not worth reading: answer, then close.
		w.Header().Set("Connection", "close")
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// The status line is out; an encoding failure can only be a broken connection.
	_ = json.NewEncoder(w).Encode(v)
}
