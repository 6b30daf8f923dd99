package apiserver

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"

	"github.com/raftlvs/raftlvs/api"
)

// forward sends the request (method, path, body) to the leader and relays its answer.
// A leader that could not be reached never saw the write (503, the client may send it
// again); one that was reached and did not answer may have applied it (504).
func (s *Server) forward(w http.ResponseWriter, r *http.Request, body []byte) {
	hops, _ := strconv.Atoi(r.Header.Get(api.HopHeader))
	if hops >= api.MaxForwardHops {
		s.writeError(w, r, fmt.Errorf("not the leader, and the request was already forwarded %d times: %w", hops, api.ErrUnavailable))
		return
	}
	addr, err := s.store.LeaderAPIAddr()
	if err != nil || addr == "" {
		s.writeError(w, r, fmt.Errorf("not the leader, and no leader is known (%v): %w", err, api.ErrUnavailable))
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, s.scheme()+addr+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		s.writeError(w, r, fmt.Errorf("forward to leader at %s: %w", addr, err))
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	req.Header.Set(api.HopHeader, strconv.Itoa(hops+1))
	s.forwardHeaders(r, req.Header)
	resp, err := s.client.Do(req)
	if err != nil {
		kind := api.ErrOutcomeUnknown
		var opErr *net.OpError
		if errors.As(err, &opErr) && opErr.Op == "dial" {
			kind = api.ErrUnavailable
		}
		s.writeError(w, r, fmt.Errorf("forward to leader at %s: %v: %w", addr, err, kind))
		return
	}
	defer resp.Body.Close()
	s.log.Debug("forwarded write to leader", "method", r.Method, "path", r.URL.Path, "leader", addr, "status", resp.StatusCode)
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.WriteHeader(resp.StatusCode)
	// Headers are out; a broken copy can only be reported by the truncated body.
	_, _ = io.Copy(w, resp.Body)
}
