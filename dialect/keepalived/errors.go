package keepalived

import (
	"errors"
	"fmt"
)

// Error classes. Every error Parse and Translate return wraps one of them (errors.Is), and
// carries the exact place in the configuration as an *Error.
var (
	// ErrSyntax: a lexical or structural fault (unbalanced brace, unterminated quote, a
	// malformed ~SEQ or ~LST, an include line that keepalived would not read as one).
	ErrSyntax = errors.New("syntax error")
	// ErrUnknownKeyword: a keyword keepalived does not know where it stands.
	ErrUnknownKeyword = errors.New("unknown keyword")
	// ErrInclude: an include names no file, or files include each other in a cycle.
	ErrInclude = errors.New("include")
	// ErrValue: a value that is malformed or out of range, for keepalived or for raftlvs.
	ErrValue = errors.New("invalid value")
	// ErrUnsupported: a keepalived setting that raftlvs cannot express without changing
	// what reaches the real servers (a GUE tunnel, a mixed-family tunnel, ...).
	ErrUnsupported = errors.New("not supported by raftlvs")
	// ErrLimit: the input exceeds a bound of Limits (include depth, expansion, size).
	ErrLimit = errors.New("limit exceeded")
)

// Pos is a place in a configuration file; Line and Col count from 1, Col in bytes.
type Pos struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Col  int    `json:"col"`
}

func (p Pos) String() string {
	switch {
	case p.File == "":
		return "-"
	case p.Line == 0:
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Error is a fault at a place in the configuration.
type Error struct {
	Pos  Pos
	Kind error // one of the Err classes above
	Msg  string
	// Cause, if set, is the underlying error (an fsm validation error, a file system error).
	Cause error
}

func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// Unwrap lets errors.Is see both the class and the cause (fsm.ErrInvalid, fs.ErrNotExist).
func (e *Error) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Kind, e.Cause}
	}
	return []error{e.Kind}
}

func errorAt(pos Pos, kind error, format string, args ...any) *Error {
	return &Error{Pos: pos, Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

func causedAt(pos Pos, kind, cause error, format string, args ...any) *Error {
	return &Error{Pos: pos, Kind: kind, Msg: fmt.Sprintf(format, args...) + ": " + cause.Error(), Cause: cause}
}
