package events

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/raftlvs/raftlvs/api"
)

// Handler serves GET /v1/events: ?after=SEQ (default 0, everything kept), ?wait=DURATION
// (hold the request until an event comes, at most api.MaxEventsWait), ?limit=N (the
// newest N). Mount it on the API's mux.
func (l *Log) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		after, limit, wait, err := parseQuery(q.Get("after"), q.Get("limit"), q.Get("wait"))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, api.ErrorBody{Error: err.Error(), Code: api.CodeInvalid})
			return
		}
		writeJSON(w, http.StatusOK, l.Wait(r.Context(), after, wait, limit))
	})
}

func parseQuery(after, limit, wait string) (uint64, int, time.Duration, error) {
	var a uint64
	var n int
	var d time.Duration
	var err error
	if after != "" {
		if a, err = strconv.ParseUint(after, 10, 64); err != nil {
			return 0, 0, 0, fmt.Errorf("after=%q: not a sequence number", after)
		}
	}
	if limit != "" {
		if n, err = strconv.Atoi(limit); err != nil || n < 0 {
			return 0, 0, 0, fmt.Errorf("limit=%q: not a count", limit)
		}
	}
	if wait != "" {
		if d, err = time.ParseDuration(wait); err != nil || d < 0 {
			return 0, 0, 0, fmt.Errorf("wait=%q: not a duration", wait)
		}
		d = min(d, api.MaxEventsWait)
	}
	return a, n, d, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the status line is out: only a broken connection fails
}
