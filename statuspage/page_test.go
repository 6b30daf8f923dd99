package statuspage

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestMountServesThePageAndItsAssetsFromTheBinary(t *testing.T) {
	mux := http.NewServeMux()
	Mount(mux)
	tests := []struct {
		path   string
		status int
		ctype  string
		body   string
	}{
		{"/", http.StatusOK, "text/html", `<script src="/ui/app.js">`},
		{"/ui/app.js", http.StatusOK, "javascript", "/v1/status?counters=true"},
		{"/ui/style.css", http.StatusOK, "text/css", "--ok"},
		{"/ui/index.html", http.StatusNotFound, "", ""},
		{"/ui/missing.js", http.StatusNotFound, "", ""},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
		if rec.Code != tt.status {
			t.Errorf("GET %s: %d, want %d", tt.path, rec.Code, tt.status)
			continue
		}
		if tt.status != http.StatusOK {
			continue
		}
		if ct := rec.Header().Get("Content-Type"); !strings.Contains(ct, tt.ctype) {
			t.Errorf("GET %s: content type %q, want %s", tt.path, ct, tt.ctype)
		}
		if !strings.Contains(rec.Body.String(), tt.body) {
			t.Errorf("GET %s: body lacks %q", tt.path, tt.body)
		}
		if rec.Header().Get("Cache-Control") != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q", tt.path, rec.Header().Get("Cache-Control"))
		}
	}
	// The page loads nothing from elsewhere: no CDN, no external font.
	for _, f := range []string{"assets/index.html", "assets/app.js", "assets/style.css"} {
		data, err := assets.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"http://", "https://", "//cdn", "@import"} {
			if strings.Contains(string(data), bad) && !(f == "assets/app.js" && bad == "http://") {
				t.Errorf("%s refers to %q", f, bad)
			}
		}
	}
}
