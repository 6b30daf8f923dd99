package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/raftlvs/raftlvs/fsm"
)

// ErrUnreachable means no director API answered at all (every address refused or timed out).
var ErrUnreachable = errors.New("no director reachable")

// ErrUnavailable means no leader could be reached to take a write (HTTP 503).
var ErrUnavailable = errors.New("no leader available")

// Error codes of ErrorBody.Code.
const (
	CodeInvalid     = "invalid"
	CodeNotFound    = "not_found"
	CodeExists      = "exists"
	CodeConflict    = "conflict"
	CodeUnavailable = "unavailable"
	CodeInternal    = "internal"
)

var codeKinds = map[string]error{
	CodeInvalid:     fsm.ErrInvalid,
	CodeNotFound:    fsm.ErrNotFound,
	CodeExists:      fsm.ErrExists,
	CodeConflict:    fsm.ErrConflict,
	CodeUnavailable: ErrUnavailable,
}

// classify maps an error to its HTTP status and code.
func classify(err error) (int, string) {
	switch {
	case errors.Is(err, fsm.ErrInvalid):
		return http.StatusBadRequest, CodeInvalid
	case errors.Is(err, fsm.ErrNotFound):
		return http.StatusNotFound, CodeNotFound
	case errors.Is(err, fsm.ErrExists):
		return http.StatusConflict, CodeExists
	case errors.Is(err, fsm.ErrConflict):
		return http.StatusConflict, CodeConflict
	case unavailable(err):
		return http.StatusServiceUnavailable, CodeUnavailable
	}
	return http.StatusInternalServerError, CodeInternal
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code := classify(err)
	body := ErrorBody{Error: err.Error(), Code: code}
	var fe *fsm.FieldError
	if errors.As(err, &fe) {
		body.Field = fe.Field
	}
	level := s.logger().Debug
	if status >= 500 {
		level = s.logger().Warn
	}
	level("api request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// The status line is out; an encoding failure can only be a broken connection.
	_ = json.NewEncoder(w).Encode(v)
}

// Error is an error answer of the API, seen by the client. It wraps the fsm sentinel of its
// class (fsm.ErrInvalid, ErrNotFound, ErrExists, ErrConflict) or ErrUnavailable, so
// errors.Is works across HTTP as it does in process.
type Error struct {
	StatusCode int
	Message    string // the server's message
	Field      string
	Code       string
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the error class, from the code or, failing that, the status.
func (e *Error) Unwrap() error {
	if k, ok := codeKinds[e.Code]; ok {
		return k
	}
	switch e.StatusCode {
	case http.StatusBadRequest:
		return fsm.ErrInvalid
	case http.StatusNotFound:
		return fsm.ErrNotFound
	case http.StatusConflict:
		return fsm.ErrConflict
	case http.StatusServiceUnavailable:
		return ErrUnavailable
	}
	return nil
}

// errorFromResponse builds an *Error from a non-2xx answer whose body was read.
func errorFromResponse(status int, body []byte) *Error {
	var eb ErrorBody
	if err := json.Unmarshal(body, &eb); err != nil || eb.Error == "" {
		// Not ours (a proxy in the way?): keep what it said, bounded.
		msg := string(body)
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
		return &Error{StatusCode: status, Message: fmt.Sprintf("HTTP %d: %s", status, msg)}
	}
	return &Error{StatusCode: status, Message: eb.Error, Field: eb.Field, Code: eb.Code}
}
