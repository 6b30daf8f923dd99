package fsm

import (
	"errors"
	"fmt"
)

// Error classes. Callers classify with errors.Is; the HTTP API maps them to status codes.
var (
	ErrInvalid        = errors.New("invalid")
	ErrNotFound       = errors.New("not found")
	ErrExists         = errors.New("already exists")
	ErrConflict       = errors.New("conflict")
	ErrUnknownCommand = errors.New("unknown command type")
)

// FieldError says which field of a request is wrong and why.
type FieldError struct {
	Field  string // e.g. "vip", "real_servers[2].weight"
	Reason string
	Kind   error // ErrInvalid, ErrNotFound, ErrExists or ErrConflict
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Reason) }
func (e *FieldError) Unwrap() error { return e.Kind }

func invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...), Kind: ErrInvalid}
}

func notFound(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...), Kind: ErrNotFound}
}

func exists(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...), Kind: ErrExists}
}

func conflict(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...), Kind: ErrConflict}
}
