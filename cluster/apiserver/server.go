// Package apiserver is the HTTP API every director serves (JSON under /v1; the contract
// and its client are package api). Reads answer from the local replica; writes are applied
// through Raft on the leader, and a follower forwards them there (at most
// api.MaxForwardHops times), so any director will do.
package apiserver

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/cluster"
	"github.com/raftlvs/raftlvs/fsm"
)

// Server serves the API for one director. Set the optional hooks before serving.
type Server struct {
	store  Store
	log    *slog.Logger
	mux    *routeMux
	client *http.Client  // forwards writes to the leader
	heavy  chan struct{} // the status answers with counters being made
	sec    *security     // nil: no TLS, no authentication (--insecure); see auth.go

	// DataPlane, if set, reports the director's kernel side under "dataplane" in
	// /v1/status: VIPs and sync daemons, and with counters (asked for with ?counters=true)
	// the IPVS counters of every service, which cost one kernel dump per service.
	DataPlane func(counters bool) *api.DataPlane
	// Agents, if set, reports the real-server agents under "agents" in /v1/status.
	Agents func() []api.Agent
	// Health, if set, connects the health-check endpoints (/v1/health…).
	Health *HealthHooks
	// Connections, if set, reads this director's IPVS connection table (the first
	// limit entries) for GET /v1/connections.
	Connections func(limit int) (*api.ConnectionList, error)
	// ReadWait bounds how long a read waits for the replica to reach the state version
	// it asks for (api.ReadWait when 0).
	ReadWait time.Duration
}

// ForwardTimeout bounds one forwarded write, leader commit included (a batch may take
// up to api.BatchTimeout there).
const ForwardTimeout = api.BatchTimeout + 10*time.Second

// New returns the API of a director backed by store.
func New(store Store, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{store: store, log: log, mux: newRouteMux(), client: &http.Client{Timeout: ForwardTimeout},
		heavy: make(chan struct{}, heavyStatus)}
	s.routes()
	return s
}

// Handle serves more of the director under the API's address and router (metrics, the
// status page): one listener, one mux. The pattern must have its access rule in
// routeRules, like every route: one without is a programming error, caught at start.
func (s *Server) Handle(pattern string, h http.Handler) {
	if _, ok := routeRules[pattern]; !ok {
		panic(fmt.Sprintf("apiserver: route %q mounted without an access rule", pattern))
	}
	s.mux.Handle(pattern, h)
}

func (s *Server) routes() {
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /v1/status", s.fresh(s.getStatus))
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
	s.mux.HandleFunc("POST /v1/barrier", s.barrier)
	s.mux.HandleFunc("GET /v1/connections", s.connections)
	s.mux.HandleFunc("POST /v1/join", s.join)
	s.mux.HandleFunc("POST /v1/leave", s.leave)
	s.mux.HandleFunc("POST /v1/leadership/transfer", s.transfer)
	s.mux.HandleFunc("POST /v1/tokens", s.createToken)
	s.mux.HandleFunc("GET /v1/tokens", s.fresh(s.listTokens))
	s.mux.HandleFunc("DELETE /v1/tokens/{id}", s.revokeToken)
	s.mux.HandleFunc("POST /v1/certificates", s.signCertificate)
	s.healthRoutes()
	s.stagedRoutes()
	s.vipRoutes()
	s.mux.HandleFunc("/", s.noRoute)
}

// noRoute answers what no route serves. The catch-all "/" matches every method, so the
// mux's own 405 never happens: a path that exists with other methods is told here, with
// Allow, and anything else is 404.
func (s *Server) noRoute(w http.ResponseWriter, r *http.Request) {
	if allow := s.mux.allowed(r); len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		s.writeError(w, r, fieldErr("method", api.ErrMethodNotAllowed, "%s %s: this endpoint takes %s", r.Method, r.URL.Path, strings.Join(allow, ", ")))
		return
	}
	s.writeError(w, r, fieldErr("path", fsm.ErrNotFound, "no endpoint %s %s", r.Method, r.URL.Path))
}

// ServeHTTP logs every request at debug level, admits it (auth.go) and routes it.
// heavyStatus is how many status answers with counters (a status page's update: one
// kernel dump per service, tens of megabytes at 10,000 services) are made at once.
const heavyStatus = 2

// Route is the pattern of the route that serves r ("GET /v1/status"), "/" for none.
func (s *Server) Route(r *http.Request) string {
	_, pattern := s.mux.Handler(r)
	return pattern
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	if r, ok := s.admit(rec, r); ok {
		if _, ru, _ := s.rule(r); !ru.open {
			rec.stamp = s.stampVersion // admitted callers learn the state version
		}
		s.mux.ServeHTTP(rec, r)
	}
	s.log.Debug("api request", "method", r.Method, "path", r.URL.Path, "status", rec.status,
		"remote", r.RemoteAddr, "forwarded", r.Header.Get(api.HopHeader), "duration", time.Since(start))
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	// stamp, if set, adds headers just before they go out (the state version).
	stamp       func(http.Header)
	wroteHeader bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.wroteHeader = true
		if r.stamp != nil {
			r.stamp(r.Header())
		}
	}
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(p []byte) (int, error) {
	if !r.wroteHeader {
		r.WriteHeader(http.StatusOK)
	}
	return r.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// apply commits c, or forwards the request to the leader when this node is not it. It
// returns false when it has already answered (an error, or the leader's answer).
func (s *Server) apply(w http.ResponseWriter, r *http.Request, body []byte, c fsm.Command) bool {
	return s.do(w, r, body, func(ctx context.Context) error { return s.store.Apply(ctx, c) })
}

// applyBatch commits a large command (a batch, a staged chunk or commit) with a batch's
// bound: thousands of services are one large log entry every director stores and applies.
func (s *Server) applyBatch(w http.ResponseWriter, r *http.Request, body []byte, c fsm.Command) bool {
	return s.do(w, r, body, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, api.BatchTimeout)
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
	if counters {
		// One kernel dump per service: at most heavyStatus at once, the others wait.
		select {
		case s.heavy <- struct{}{}:
			defer func() { <-s.heavy }()
		case <-r.Context().Done():
			return
		}
	}
	resp := api.StatusResponse{At: time.Now(), Node: nodeStatus(s.store.Status())}
	s.store.View(func(st *fsm.State) {
		resp.ClusterID, resp.Version = st.ClusterID(), st.Version()
		resp.Directors = st.Directors()
		resp.Services = serviceInfos(st)
	})
	if s.DataPlane != nil {
		resp.DataPlane = s.DataPlane(counters)
	}
	if s.Agents != nil {
		resp.Agents = s.Agents()
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) getState(w http.ResponseWriter, r *http.Request) {
	var d api.StateDump
	s.store.View(func(st *fsm.State) {
		d = api.StateDump{
			ClusterID: st.ClusterID(), Version: st.Version(), Services: st.Services(),
			RealServers: st.AllRealServers(), Directors: st.Directors(),
		}
	})
	writeJSON(w, http.StatusOK, d)
}

func serviceInfos(st *fsm.State) []api.ServiceInfo {
	svcs := st.Services()
	out := make([]api.ServiceInfo, len(svcs))
	for i, svc := range svcs {
		out[i] = serviceInfo(st, svc)
	}
	return out
}

func serviceInfo(st *fsm.State, svc fsm.Service) api.ServiceInfo {
	rss := st.RealServers(svc.Name)
	if rss == nil {
		rss = []fsm.RealServer{}
	}
	return api.ServiceInfo{Service: svc, RealServers: rss}
}

// servingOnly answers 503 instead of reading a replica that has not caught up or lost
// its leader: the client then asks another director.
func (s *Server) servingOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.store.Serving() {
			s.writeError(w, r, fmt.Errorf("this director has not caught up with the cluster or lost its leader: %w", api.ErrUnavailable))
			return
		}
		if s.caughtUp(w, r) {
			h(w, r)
		}
	}
}

// nodeStatus is the wire form of the node's view of Raft.
func nodeStatus(cs cluster.Status) api.NodeStatus {
	ns := api.NodeStatus{
		NodeID: cs.NodeID, State: cs.State, LeaderID: cs.LeaderID, LeaderAddr: cs.LeaderAddr,
		Term: cs.Term, CommitIndex: cs.CommitIndex, AppliedIndex: cs.AppliedIndex, LastContact: cs.LastContact,
		LeaderCommitIndex: cs.LeaderCommitIndex, Serving: cs.Serving,
		ClusterID: cs.ClusterID, StateVersion: cs.StateVersion, Error: cs.Error,
	}
	for _, v := range cs.Voters {
		ns.Voters = append(ns.Voters, api.Voter{ID: v.ID, RaftAddr: v.RaftAddr, APIAddr: v.APIAddr, Suffrage: v.Suffrage,
			Contact: string(v.Contact), LastContact: v.LastContact, FailingSince: v.FailingSince, LastLogIndex: v.LastLogIndex})
	}
	return ns
}
