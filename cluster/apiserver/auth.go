package apiserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/fsm"
	"github.com/raftlvs/raftlvs/pki"
)

// Every route has an access rule, and a request is authenticated and authorized before
// it reaches its handler, on the director that received it: a follower checks its
// caller before it forwards, and the leader then sees only the forwarding director.
// A pattern with no rule is refused (fail closed), so an endpoint added without one
// fails its first request and TestEveryRouteHasAnAccessRule.

// rule is who may use an endpoint.
type rule struct {
	open   bool       // anyone, without credentials: /healthz
	need   pki.Access // operators with at least this; directors always
	agents bool       // agents too (reading a service)
	// join: the handler authenticates by itself, with a join token or, for a renewal,
	// the caller's certificate (POST /v1/certificates).
	join bool
	// directors: directors only, no operator (internal endpoints between directors).
	directors bool
}

// routeRules: read ⊂ operate ⊂ admin, as pki.Access orders them.
var routeRules = map[string]rule{
	"GET /healthz":                                     {open: true},
	"GET /v1/status":                                   {need: pki.AccessRead},
	"GET /v1/state":                                    {need: pki.AccessRead},
	"GET /v1/services":                                 {need: pki.AccessRead},
	"GET /v1/services/{name}":                          {need: pki.AccessRead, agents: true},
	"POST /v1/services":                                {need: pki.AccessOperate},
	"PUT /v1/services/{name}":                          {need: pki.AccessOperate},
	"DELETE /v1/services/{name}":                       {need: pki.AccessOperate},
	"POST /v1/services/{name}/servers":                 {need: pki.AccessOperate},
	"PUT /v1/services/{name}/servers/{addr}/{port}":    {need: pki.AccessOperate},
	"DELETE /v1/services/{name}/servers/{addr}/{port}": {need: pki.AccessOperate},
	"POST /v1/batch":                                   {need: pki.AccessOperate},
	"POST /v1/barrier":                                 {need: pki.AccessRead}, // a consistent read's first step
	"GET /v1/connections":                              {need: pki.AccessRead},
	"POST /v1/join":                                    {need: pki.AccessAdmin},
	"POST /v1/leave":                                   {need: pki.AccessAdmin},
	"POST /v1/leadership/transfer":                     {need: pki.AccessAdmin},
	"POST /v1/tokens":                                  {need: pki.AccessAdmin},
	"GET /v1/tokens":                                   {need: pki.AccessAdmin},
	"DELETE /v1/tokens/{id}":                           {need: pki.AccessAdmin},
	"POST /v1/certificates":                            {join: true},
	"POST /v1/health/views":                            {directors: true},
	"GET /v1/health/views":                             {need: pki.AccessRead},
	"GET /v1/health":                                   {need: pki.AccessRead},
	"POST /v1/staged/{tx}/chunks/{seq}":                {need: pki.AccessOperate},
	"POST /v1/staged/{tx}/commit":                      {need: pki.AccessOperate},
	"DELETE /v1/staged/{tx}":                           {need: pki.AccessOperate},
	"GET /v1/staged":                                   {need: pki.AccessRead},
	"GET /v1/vips":                                     {need: pki.AccessRead},
	"POST /v1/vips":                                    {need: pki.AccessOperate},
	"DELETE /v1/vips/{addr}":                           {need: pki.AccessOperate},
	// Mounted by the daemon (Server.Handle): the timeline, metrics, and the status page,
	// whose page and assets hold no data (its script then asks for a read credential).
	"GET /v1/events": {need: pki.AccessRead},
	"GET /metrics":   {need: pki.AccessRead},
	"GET /{$}":       {open: true},
	"GET /ui/":       {open: true},
	// Anything else answers 404, to those who may read.
	"/": {need: pki.AccessRead},
}

// Headers a forwarding director adds. The leader believes them only from a director.
const (
	// forwardedCertHeader carries the original caller's verified leaf certificate
	// (base64 DER), so that the leader acts for the caller, not the forwarder.
	forwardedCertHeader = "X-Raftlvs-Forwarded-Cert"
	// forwardedForHeader is the original caller's address: an agent token certifies
	// only the address the request came from.
	forwardedForHeader = "X-Raftlvs-Forwarded-For"
)

// Security is a secure API: HTTPS with the director's certificate, callers
// authenticated by client certificate or bearer token, and forwarding over mutual TLS.
type Security struct {
	// TLS is the director's material (a *pki.Reloader).
	TLS pki.Source
	// Now is the clock for tokens and certificates; nil is time.Now.
	Now func() time.Time
}

type security struct {
	Security
	authn  pki.Authenticator
	policy pki.Policy // for client certificates
}

// Secure turns on HTTPS, authentication and authorization, and mutual TLS when
// forwarding to the leader. Call it before serving; without it the API is open and
// plain (--insecure).
func (s *Server) Secure(cfg Security) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	sec := &security{Security: cfg}
	sec.authn = pki.Authenticator{Tokens: s.lookupToken, Now: cfg.Now}
	sec.policy = pki.Policy{Now: cfg.Now, Revoked: s.revoked}
	s.sec = sec
	leader := pki.Require(pki.RoleDirector)
	leader.Revoked, leader.Now = s.revoked, cfg.Now
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = pki.ClientConfig(cfg.TLS, leader)
	s.client = &http.Client{Timeout: ForwardTimeout, Transport: t}
}

// TLSConfig is the API's server configuration: the director's current certificate,
// and client certificates verified (optional: a caller may use a token instead).
// Nil without Secure.
func (s *Server) TLSConfig() *tls.Config {
	if s.sec == nil {
		return nil
	}
	return pki.APIServerConfig(s.sec.TLS, s.sec.policy)
}

func (s *Server) revoked(c *x509.Certificate) bool {
	var r bool
	s.store.View(func(st *fsm.State) { r = st.CertificateRevoked(c.SerialNumber.Text(16)) })
	return r
}

func (s *Server) lookupToken(id string) (pki.Token, bool) {
	var t fsm.Token
	var ok bool
	s.store.View(func(st *fsm.State) { t, ok = st.Token(id) })
	if !ok {
		return pki.Token{}, false
	}
	return pkiToken(t), true
}

// pkiToken is the record as pki checks it: a used single-use token is spent.
func pkiToken(t fsm.Token) pki.Token {
	pt := pki.Token{
		ID: t.ID, Role: pki.Role(t.Role), Access: pki.Access(t.Access), Networks: t.Networks, Hash: t.Hash,
		Created: t.Created, Expires: t.Expires, Revoked: t.Revoked, Description: t.Description,
	}
	if !t.Used.IsZero() && (pt.Revoked.IsZero() || t.Used.Before(pt.Revoked)) {
		pt.Revoked = t.Used
	}
	return pt
}

// rule finds the access rule of the route that serves r.
func (s *Server) rule(r *http.Request) (string, rule, bool) {
	_, pattern := s.mux.Handler(r)
	ru, ok := routeRules[pattern]
	return pattern, ru, ok
}

type callerKey struct{}

// caller is the identity the middleware admitted (none without Secure, or on open
// routes).
func caller(r *http.Request) (pki.Identity, bool) {
	id, ok := r.Context().Value(callerKey{}).(pki.Identity)
	return id, ok
}

// admit authenticates and authorizes r for its route, answering 401 or 403 (with what
// is missing) itself when it may not go on. It returns the request to serve.
func (s *Server) admit(w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	pattern, ru, ok := s.rule(r)
	if !ok {
		s.writeError(w, r, fmt.Errorf("%w: endpoint %q has no access rule (a bug: every route needs one)", pki.ErrForbidden, pattern))
		return r, false
	}
	if s.sec == nil || ru.open {
		return r, true
	}
	id, err := s.identify(r)
	if ru.join {
		// The handler decides, from the token or the certificate.
		if err == nil {
			r = r.WithContext(context.WithValue(r.Context(), callerKey{}, id))
		}
		return r, true
	}
	if err != nil {
		s.writeError(w, r, err)
		return r, false
	}
	switch {
	case ru.directors:
		if id.Role != pki.RoleDirector {
			err = fmt.Errorf("%w: %s: only directors use %s", pki.ErrForbidden, id, pattern)
		}
	case ru.agents && id.Role == pki.RoleAgent:
	default:
		err = pki.Authorize(id, ru.need)
	}
	if err != nil {
		s.writeError(w, r, err)
		return r, false
	}
	return r.WithContext(context.WithValue(r.Context(), callerKey{}, id)), true
}

// identify is the request's caller: its certificate's identity, or its token's; on a
// request a director forwarded, the original caller's certificate if it had one.
func (s *Server) identify(r *http.Request) (pki.Identity, error) {
	id, err := s.sec.authn.Authenticate(r.TLS, r.Header.Get("Authorization"))
	if err != nil || id.Role != pki.RoleDirector || r.Header.Get(forwardedCertHeader) == "" {
		return id, err
	}
	der, err := base64.StdEncoding.DecodeString(r.Header.Get(forwardedCertHeader))
	if err != nil {
		return pki.Identity{}, fmt.Errorf("%w: forwarded certificate: %v", pki.ErrUnauthenticated, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return pki.Identity{}, fmt.Errorf("%w: forwarded certificate: %v", pki.ErrUnauthenticated, err)
	}
	// The forwarder verified it; verify again here, against this node's CAs and list
	// of revoked certificates.
	return pki.VerifyPeer(s.sec.TLS, s.sec.policy, []*x509.Certificate{cert}, x509.ExtKeyUsageClientAuth)
}

// source is the address the request came from: the original caller's when a director
// forwarded it.
func (s *Server) source(r *http.Request) netip.Addr {
	if id, ok := pki.PeerIdentity(r.TLS); ok && id.Role == pki.RoleDirector {
		if a, err := netip.ParseAddr(r.Header.Get(forwardedForHeader)); err == nil {
			return a.Unmap()
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// forwardHeaders are what a follower adds to a request it forwards: who the caller is,
// for the leader to act for them.
func (s *Server) forwardHeaders(r *http.Request, out http.Header) {
	if s.sec == nil {
		return
	}
	if a := r.Header.Get("Authorization"); a != "" {
		out.Set("Authorization", a) // to another director, over mutual TLS
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		if id, ok := pki.PeerIdentity(r.TLS); !ok || id.Role != pki.RoleDirector || r.Header.Get(forwardedCertHeader) == "" {
			out.Set(forwardedCertHeader, base64.StdEncoding.EncodeToString(r.TLS.PeerCertificates[0].Raw))
		} else {
			out.Set(forwardedCertHeader, r.Header.Get(forwardedCertHeader))
		}
	}
	if src := s.source(r); src.IsValid() {
		out.Set(forwardedForHeader, src.String())
	}
}

// scheme is how this director reaches the leader's API.
func (s *Server) scheme() string {
	if s.sec != nil {
		return "https://"
	}
	return "http://"
}

// healthz: GET /healthz, open to all: 200 while this director serves (caught up, in
// touch with a leader), 503 otherwise. It says nothing else.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if !s.store.Serving() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not serving"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// authError is the status and code of an authentication or authorization error, if err
// is one.
func authError(err error) (int, string, bool) {
	switch pki.HTTPStatus(err) {
	case http.StatusUnauthorized:
		return http.StatusUnauthorized, api.CodeUnauthenticated, true
	case http.StatusForbidden:
		return http.StatusForbidden, api.CodeForbidden, true
	}
	if errors.Is(err, pki.ErrCertRevoked) || errors.Is(err, pki.ErrUnknownCA) || errors.Is(err, pki.ErrCertExpired) {
		return http.StatusUnauthorized, api.CodeUnauthenticated, true
	}
	return 0, "", false
}

// routeMux is the one router, remembering its patterns so a test can walk them all.
type routeMux struct {
	*http.ServeMux
	patterns []string
}

func newRouteMux() *routeMux {
	return &routeMux{ServeMux: http.NewServeMux()}
}

func (m *routeMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.HandleFunc(pattern, h)
}

// methods are those allowed reports, in this order.
var methods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// allowed lists the methods with which r's path has a route of its own (not the
// catch-all), for a 405's Allow header.
func (m *routeMux) allowed(r *http.Request) []string {
	var out []string
	for _, method := range methods {
		probe := *r
		probe.Method = method
		if _, pattern := m.Handler(&probe); pattern != "" && pattern != "/" {
			out = append(out, method)
		}
	}
	return out
}

func (m *routeMux) Handle(pattern string, h http.Handler) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.Handle(pattern, h)
}
