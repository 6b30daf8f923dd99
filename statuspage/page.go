// Package statuspage is the live status page every director serves at / on its API
// port: one HTML page, a stylesheet and a small hand-written script, embedded in the
// binary (no build step, no CDN). The script reads GET /v1/status?counters=true every
// two seconds and follows GET /v1/events with a long poll, so the page follows the
// cluster without a reload; it stamps every figure with the director that answered and
// its age, and says so when that director is a follower, has lost its leader, or stops
// answering. See DESIGN.md.
package statuspage

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed assets
var assets embed.FS

// Mux is where the page is mounted (the API server's one mux).
type Mux interface {
	Handle(pattern string, h http.Handler)
}

// Mount serves the page at / and its assets under /ui/.
func Mount(mux Mux) {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree is known at build time
	}
	files := http.FileServerFS(sub)
	mux.Handle("GET /{$}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		noCache(w)
		http.ServeFileFS(w, r, sub, "index.html")
	}))
	mux.Handle("GET /ui/", http.StripPrefix("/ui/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || r.URL.Path == "index.html" {
			http.NotFound(w, r)
			return
		}
		noCache(w)
		files.ServeHTTP(w, r)
	})))
}

// noCache: a new binary brings a new script; the browser must not keep the old one.
func noCache(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Content-Type-Options", "nosniff")
}
