package apiserver

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/raftlvs/raftlvs/api"
)

// TestABodyOverTheLimitIs413OverTheWire sends 50 MB to a real listener: the client reads
// a 413 that names the limit (not a reset, not a 400), and nothing changed.
func TestABodyOverTheLimitIs413OverTheWire(t *testing.T) {
	store, srv := newTestServer(t)
	ts := httptest.NewServer(srv)
	defer ts.Close()
	for _, path := range []string{"/v1/services", "/v1/batch"} {
		body := bytes.Repeat([]byte(" "), 50<<20)
		req, _ := http.NewRequest(http.MethodPost, ts.URL+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("POST %s with 50 MB: %v, want an answer", path, err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("POST %s with 50 MB: %d %s, want 413", path, resp.StatusCode, data)
		}
		limit := "1 MiB"
		if path == "/v1/batch" {
			limit = "8 MiB"
		}
		if !strings.Contains(string(data), limit) || !strings.Contains(string(data), api.CodeTooLarge) {
			t.Errorf("POST %s: %s, want the limit (%s) and code %s", path, data, limit, api.CodeTooLarge)
		}
	}
	if v := store.version(); v != 0 {
		t.Errorf("state version %d after refused bodies, want 0", v)
	}
}

// TestAKnownPathWithAnotherMethodIs405WithAllow: the catch-all route does not hide the
// methods a path takes; an unknown path stays 404.
func TestAKnownPathWithAnotherMethodIs405WithAllow(t *testing.T) {
	store, srv := newTestServer(t)
	store.must(webService, webRS1)
	tests := []struct {
		method, path string
		code         int
		allow        string
	}{
		{"POST", "/v1/status", 405, "GET, HEAD"},
		{"DELETE", "/v1/services", 405, "GET, HEAD, POST"},
		{"POST", "/v1/services/web", 405, "GET, HEAD, PUT, DELETE"},
		{"GET", "/v1/services/web/servers/198.51.100.21/80", 405, "PUT, DELETE"},
		{"GET", "/v1/batch", 405, "POST"},
		{"GET", "/v1/nothing-here", 404, ""},
	}
	for _, tt := range tests {
		rec := request(t, srv, tt.method, tt.path, "")
		if rec.Code != tt.code || rec.Header().Get("Allow") != tt.allow {
			t.Errorf("%s %s: %d Allow %q, want %d Allow %q (%s)", tt.method, tt.path, rec.Code, rec.Header().Get("Allow"), tt.code, tt.allow, rec.Body)
		}
	}
	// The client classifies both, by code or by status alone.
	if rec := request(t, srv, "POST", "/v1/status", ""); !errors.Is(&api.Error{StatusCode: rec.Code, Code: decode[api.ErrorBody](t, rec).Code}, api.ErrMethodNotAllowed) {
		t.Error("the 405 answer is not ErrMethodNotAllowed to the client")
	}
	if e := (&api.Error{StatusCode: 405}); !errors.Is(e, api.ErrMethodNotAllowed) {
		t.Error("a 405 is not ErrMethodNotAllowed to the client")
	}
	if e := (&api.Error{StatusCode: 413}); !errors.Is(e, api.ErrTooLarge) {
		t.Error("a 413 is not ErrTooLarge to the client")
	}
}
