package apiserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/fsm"
)

func fieldErr(field string, kind error, format string, args ...any) error {
	return &fsm.FieldError{Field: field, Reason: fmt.Sprintf(format, args...), Kind: kind}
}

// readBody reads a JSON request body of at most limit bytes. emptyOK allows no body at all.
func readBody(r *http.Request, limit int64, emptyOK bool) ([]byte, error) {
	body, err := readBytes(r, limit)
	if err != nil {
		return nil, err
	}
	if len(body) == 0 && emptyOK {
		return body, nil
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return nil, fieldErr("body", fsm.ErrInvalid, "Content-Type must be application/json, not %q", r.Header.Get("Content-Type"))
	}
	return body, nil
}

// readBytes reads a request body of at most limit bytes, whatever its type.
func readBytes(r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	if int64(len(body)) > limit {
		return nil, fieldErr("body", api.ErrTooLarge, "larger than this endpoint's limit of %d bytes (%s)", limit, sizeText(limit))
	}
	return body, nil
}

// decodeRequest reads and decodes a JSON body into v.
func decodeRequest(r *http.Request, limit int64, v any) ([]byte, error) {
	body, err := readBody(r, limit, false)
	if err != nil {
		return nil, err
	}
	return body, decodeJSON(body, v)
}

// decodeJSON decodes exactly one JSON object with no unknown fields. Every failure is an
// error wrapping fsm.ErrInvalid that names the offending field when it can.
func decodeJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fieldErr("body", fsm.ErrInvalid, "trailing data after the JSON object")
	}
	return nil
}

func jsonError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field != "" && isPort(typeErr):
		return fieldErr(typeErr.Field, fsm.ErrInvalid, "port %s is out of range 0..65535", strings.TrimPrefix(typeErr.Value, "number "))
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return fieldErr(typeErr.Field, fsm.ErrInvalid, "%s is not a valid %s", typeErr.Value, typeErr.Type)
	case errors.As(err, &syntaxErr):
		return fieldErr("body", fsm.ErrInvalid, "malformed JSON at offset %d: %v", syntaxErr.Offset, err)
	case errors.Is(err, io.EOF):
		return fieldErr("body", fsm.ErrInvalid, "a JSON object is required")
	}
	// Unknown fields and text-unmarshaler failures (a bad address) land here; their
	// message names the field.
	return fieldErr("body", fsm.ErrInvalid, "%v", err)
}

// isPort reports a number that does not fit a port field (a uint16 named port).
func isPort(e *json.UnmarshalTypeError) bool {
	name := e.Field[strings.LastIndex(e.Field, ".")+1:]
	return e.Type != nil && e.Type.Kind() == reflect.Uint16 && strings.HasPrefix(e.Value, "number") &&
		(name == "port" || strings.HasSuffix(name, "_port"))
}

// sizeText says a byte count in MiB or KiB when it is a whole number of them.
func sizeText(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
