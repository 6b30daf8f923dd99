package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Router is the API: its handler, and the route (its mux pattern) a request goes to.
type Router interface {
	http.Handler
	Route(r *http.Request) string
}

// InstrumentAPI counts the requests h serves by endpoint (the pattern of the API's mux
// route they match, "GET /v1/status"; "other" for none) and status code, and times them.
// The route is asked of h before it serves: the request the mux sees may be a copy (the
// authenticated caller rides in its context), which the copy's Pattern would not reach.
func InstrumentAPI(reg prometheus.Registerer, h Router) http.Handler {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "api_requests_total",
		Help: "HTTP API requests, by endpoint (the route's pattern) and status code.",
	}, []string{"endpoint", "code"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "api_request_duration_seconds",
		Help:    "Time to answer an HTTP API request, by endpoint (a long poll of /v1/events lasts its wait).",
		Buckets: []float64{.001, .005, .025, .1, .5, 2.5, 10, 60},
	}, []string{"endpoint"})
	reg.MustRegister(requests, duration)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &codeRecorder{ResponseWriter: w, code: http.StatusOK}
		endpoint := h.Route(r)
		h.ServeHTTP(rec, r)
		if endpoint == "" || endpoint == "/" {
			endpoint = "other" // unrouted: a path per scanner would be a series each
		}
		requests.WithLabelValues(endpoint, strconv.Itoa(rec.code)).Inc()
		duration.WithLabelValues(endpoint).Observe(time.Since(start).Seconds())
	})
}

type codeRecorder struct {
	http.ResponseWriter
	code int
}

func (r *codeRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (flushes of a long poll).
func (r *codeRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
