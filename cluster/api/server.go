// Package api is the HTTP API every director serves (JSON under /v1) and its Go client.
// Reads answer from the local replica; writes are applied through Raft on the leader, and a
// follower forwards them there (at most MaxForwardHops times), so any director will do.
package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// Server serves the API for one director. Set the optional hooks before serving.
type Server struct {
	store  Store
	log    *slog.Logger
	mux    *http.ServeMux
	client *http.Client // forwards writes to the leader

	// DataPlane, if set, reports the director's kernel side under "dataplane" in
	// /v1/status: VIPs and sync daemons, and with counters (asked for with ?counters=true)
	// the IPVS counters of every service, which cost one kernel dump per service.
	DataPlane func(counters bool) *DataPlane
	// Agents, if set, reports the real-server agents under "agents" in /v1/status.
	Agents func() any
}

// ForwardTimeout bounds one forwarded write, leader commit included (a batch may take
// up to BatchTimeout there).
const ForwardTimeout = BatchTimeout + 10*time.Second

// NewServer returns the API of a director backed by store.
func NewServer(store Store, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{store: store, log: log, mux: http.NewServeMux(), client: &http.Client{Timeout: ForwardTimeout}}
	s.routes()
	return s
}

func (s *Server) logger() *slog.Logger { return s.log }

func (s *Server) routes() {
	s.mux.HandleFunc("GET /v1/status", s.getStatus)
	s.mux.HandleFunc("GET /v1/state", s.servingOnly(s.getState))
	s.mux.HandleFunc("GET /v1/services", s.servingOnly(s.listServices))
	s.mux.HandleFunc("POST /v1/services", s.addService)
	s.mux.HandleFunc("GET /v1/services/{name}", s.servingOnly(s.getService))
	s.mux.HandleFunc("PUT /v1/services/{name}", s.editService)
	s.mux.HandleFunc("DELETE /v1/services/{name}", s.removeService)
	s.mux.HandleFunc("POST /v1/services/{name}/servers", s.addRealServer)
	s.mux.HandleFunc("PUT /v1/services/{name}/servers/{addr}/{port}", s.editRealServer)
	s.mux.HandleFunc("DELETE /v1/services/{name}/servers/{addr}/{port}", s.removeRealServer)
	s.mux.HandleFunc("POST /v1/batch", s.batch)
	s.mux.HandleFunc("POST /v1/join", s.join)
	s.mux.HandleFunc("POST /v1/leave", s.leave)
	s.mux.HandleFunc("POST /v1/leadership/transfer", s.transfer)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, fieldErr("path", fsm.ErrNotFound, "no endpoint %s %s", r.Method, r.URL.Path))
	})
}

// ServeHTTP logs every request at debug level and routes it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	s.mux.ServeHTTP(rec, r)
	s.log.Debug("api request", "method", r.Method, "path", r.URL.Path, "status", rec.status,
		"remote", r.RemoteAddr, "forwarded", r.Header.Get(HopHeader), "duration", time.Since(start))
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// readBody reads a JSON request body of at most limit bytes. emptyOK allows no body at all.
func readBody(r *http.Request, limit int64, emptyOK bool) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	if int64(len(body)) > limit {
		return nil, fieldErr("body", fsm.ErrInvalid, "larger than %d bytes", limit)
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

// decodeRequest reads and decodes a JSON body into v.
func decodeRequest(r *http.Request, limit int64, v any) ([]byte, error) {
	body, err := readBody(r, limit, false)
	if err != nil {
		return nil, err
	}
	return body, decodeJSON(body, v)
}

// apply commits c, or forwards the request to the leader when this node is not it. It
// returns false when it has already answered (an error, or the leader's answer).
func (s *Server) apply(w http.ResponseWriter, r *http.Request, body []byte, c fsm.Command) bool {
	return s.do(w, r, body, func(ctx context.Context) error { return s.store.Apply(ctx, c) })
}

// BatchTimeout bounds the commit of one batch: a restore of thousands of services is one
// large log entry that every director must store and apply.
const BatchTimeout = 2 * time.Minute

func (s *Server) applyBatch(w http.ResponseWriter, r *http.Request, body []byte, c fsm.Batch) bool {
	return s.do(w, r, body, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, BatchTimeout)
		defer cancel()
		return s.store.Apply(ctx, c)
	})
}

func (s *Server) do(w http.ResponseWriter, r *http.Request, body []byte, op func(context.Context) error) bool {
	err := op(r.Context())
	switch {
	case err == nil:
		return true
	case isNotLeader(err):
		s.forward(w, r, body)
	default:
		s.writeError(w, r, err)
	}
	return false
}

func (s *Server) getStatus(w http.ResponseWriter, r *http.Request) {
	counters := false
	if v := r.URL.Query().Get("counters"); v != "" {
		var err error
		if counters, err = strconv.ParseBool(v); err != nil {
			s.writeError(w, r, fieldErr("counters", fsm.ErrInvalid, "%q is not true or false", v))
			return
		}
	}
	resp := StatusResponse{Node: s.store.Status()}
	s.store.View(func(st *fsm.State) {
		resp.ClusterID, resp.Version = st.ClusterID(), st.Version()
		resp.Directors = st.Directors()
		resp.Services = serviceInfos(st)
	})
	if s.DataPlane != nil {
		resp.DataPlane = s.DataPlane(counters)
	}
	if s.Agents != nil {
		raw, err := json.Marshal(s.Agents())
		if err != nil {
			s.writeError(w, r, fmt.Errorf("encode agents: %w", err))
			return
		}
		resp.Agents = raw
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) getState(w http.ResponseWriter, r *http.Request) {
	var d StateDump
	s.store.View(func(st *fsm.State) {
		d = StateDump{
			ClusterID: st.ClusterID(), Version: st.Version(), Services: st.Services(),
			RealServers: st.AllRealServers(), Directors: st.Directors(),
		}
	})
	writeJSON(w, http.StatusOK, d)
}

func serviceInfos(st *fsm.State) []ServiceInfo {
	svcs := st.Services()
	out := make([]ServiceInfo, len(svcs))
	for i, svc := range svcs {
		out[i] = serviceInfo(st, svc)
	}
	return out
}

func serviceInfo(st *fsm.State, svc fsm.Service) ServiceInfo {
	rss := st.RealServers(svc.Name)
	if rss == nil {
		rss = []fsm.RealServer{}
	}
	return ServiceInfo{Service: svc, RealServers: rss}
}

// servingOnly answers 503 instead of reading a replica that has not caught up or lost
// its leader: the client then asks another director.
func (s *Server) servingOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.store.Serving() {
			s.writeError(w, r, fmt.Errorf("this director has not caught up with the cluster or lost its leader: %w", ErrUnavailable))
			return
		}
		h(w, r)
	}
}
