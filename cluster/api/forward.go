package api

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// HopHeader counts how many times a write was forwarded. A node that is not the leader
// forwards a request only while the count is below MaxForwardHops, so a stale view of the
// leader (two nodes each naming the other) ends in a 503 rather than a loop.
const HopHeader = "X-Raftlvs-Forwarded"

// MaxForwardHops allows one forward, plus one more when leadership moved meanwhile.
const MaxForwardHops = 2

// forward sends the request (method, path, body) to the leader and relays its answer.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, body []byte) {
	hops, _ := strconv.Atoi(r.Header.Get(HopHeader))
	if hops >= MaxForwardHops {
		s.writeError(w, r, fmt.Errorf("not the leader, and the request was already forwarded %d times: %w", hops, ErrUnavailable))
		return
	}
	addr, err := s.store.LeaderAPIAddr()
	if err != nil || addr == "" {
		s.writeError(w, r, fmt.Errorf("not the leader, and no leader is known (%v): %w", err, ErrUnavailable))
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, "http://"+addr+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		s.writeError(w, r, fmt.Errorf("forward to leader at %s: %w", addr, err))
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	req.Header.Set(HopHeader, strconv.Itoa(hops+1))
	resp, err := s.client.Do(req)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("forward to leader at %s: %v: %w", addr, err, ErrUnavailable))
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
