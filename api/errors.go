package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/raftlvs/raftlvs/fsm"
)

var (
	// ErrUnreachable means no director API answered at all (every address refused or
	// timed out before a request could be sent).
	ErrUnreachable = errors.New("no director reachable")
	// ErrUnavailable means no leader could take the write now, and nothing was logged:
	// the write may be sent again (the client does, until its timeout). HTTP 503.
	ErrUnavailable = errors.New("no leader available")
	// ErrOutcomeUnknown means the write reached a leader but no verdict came back in
	// time (the leader lost its leadership, or the commit timed out): it may or may not
	// take effect. Read the state before sending it again. HTTP 504.
	ErrOutcomeUnknown = errors.New("outcome unknown: the write may or may not have been applied; read before retrying")
	// ErrUnauthenticated means the request carried no credentials the director accepts
	// (no client certificate, no token, or a bad, expired or revoked one). HTTP 401.
	ErrUnauthenticated = errors.New("not authenticated")
	// ErrForbidden means the credentials are good but do not allow this. HTTP 403.
	ErrForbidden = errors.New("forbidden")
	// ErrTooLarge means the request body is over the endpoint's limit (the message
	// says which). HTTP 413.
	ErrTooLarge = errors.New("request body too large")
	// ErrMethodNotAllowed means the path exists but not with this method; the answer's
	// Allow header lists those it takes. HTTP 405.
	ErrMethodNotAllowed = errors.New("method not allowed")
)

// ErrDiskFull means the leader could not store the write in its own log because its disk
// is full: nothing was logged, and the leader steps down so that another may take it.
// It is a kind of ErrUnavailable (the client sends the write again, to the next
// director, until its timeout). HTTP 507.
var ErrDiskFull error = diskFull{}

type diskFull struct{}

func (diskFull) Error() string        { return "the leader's disk is full: nothing was logged" }
func (diskFull) Is(target error) bool { return target == ErrUnavailable }

// errReadUnavailable is ErrUnavailable as a read meets it: every director answered 503
// (behind the version the read asks for, or not serving), whether or not there is a
// leader.
var errReadUnavailable = readUnavailable{}

type readUnavailable struct{}

func (readUnavailable) Error() string        { return "no director could serve the read" }
func (readUnavailable) Is(target error) bool { return target == ErrUnavailable }

// Error codes of ErrorBody.Code.
const (
	CodeInvalid         = "invalid"
	CodeNotFound        = "not_found"
	CodeExists          = "exists"
	CodeConflict        = "conflict"
	CodeUnavailable     = "unavailable"
	CodeOutcomeUnknown  = "outcome_unknown"
	CodeDiskFull        = "disk_full"
	CodeInternal        = "internal"
	CodeUnauthenticated = "unauthenticated"
	CodeForbidden       = "forbidden"
	CodeTooLarge        = "too_large"
	CodeMethod          = "method_not_allowed"
)

// CodeKinds maps each error code to the sentinel errors.Is recognises.
var CodeKinds = map[string]error{
	CodeInvalid:         fsm.ErrInvalid,
	CodeNotFound:        fsm.ErrNotFound,
	CodeExists:          fsm.ErrExists,
	CodeConflict:        fsm.ErrConflict,
	CodeUnavailable:     ErrUnavailable,
	CodeOutcomeUnknown:  ErrOutcomeUnknown,
	CodeDiskFull:        ErrDiskFull,
	CodeUnauthenticated: ErrUnauthenticated,
	CodeForbidden:       ErrForbidden,
	CodeTooLarge:        ErrTooLarge,
	CodeMethod:          ErrMethodNotAllowed,
}

// Error is an error answer of the API, seen by the client. It wraps the sentinel of its
// class (fsm.ErrInvalid, ErrNotFound, ErrExists, ErrConflict, ErrUnavailable,
// ErrDiskFull or ErrOutcomeUnknown), so errors.Is works across HTTP as it does in
// process.
type Error struct {
	StatusCode int
	Message    string // the server's message
	Field      string
	Code       string
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the error class, from the code or, failing that, the status.
func (e *Error) Unwrap() error {
	if k, ok := CodeKinds[e.Code]; ok {
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
	case http.StatusGatewayTimeout:
		return ErrOutcomeUnknown
	case http.StatusInsufficientStorage:
		return ErrDiskFull
	case http.StatusUnauthorized:
		return ErrUnauthenticated
	case http.StatusForbidden:
		return ErrForbidden
	case http.StatusRequestEntityTooLarge:
		return ErrTooLarge
	case http.StatusMethodNotAllowed:
		return ErrMethodNotAllowed
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
