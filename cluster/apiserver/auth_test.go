package apiserver

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/fsm"
	"github.com/raftlvs/raftlvs/pki"
	"github.com/raftlvs/raftlvs/pki/enroll"
	"github.com/raftlvs/raftlvs/pki/pkitest"
)

// secureServer is a leader's API over HTTPS on loopback, with real certificates.
type secureServer struct {
	store *fakeStore
	srv   *Server
	ts    struct{ URL string }
	ca    *pkitest.Cluster
}

// newSecureServer serves as the daemon does: a TLS listener with the server's own
// config (httptest's StartTLS would put its own certificate first).
func newSecureServer(t *testing.T, store *fakeStore, ca *pkitest.Cluster) *secureServer {
	t.Helper()
	srv := New(store, nil)
	srv.Secure(Security{TLS: ca.Director(store.id)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv, ErrorLog: log.New(io.Discard, "", 0)}
	go hs.Serve(tls.NewListener(ln, srv.TLSConfig()))
	t.Cleanup(func() { hs.Close() })
	s := &secureServer{store: store, srv: srv, ca: ca}
	s.ts.URL = "https://" + ln.Addr().String()
	return s
}

func (s *secureServer) addr() string { return strings.TrimPrefix(s.ts.URL, "https://") }

// httpClient presents src's certificate (none for a trust-only bundle) and checks that
// the server is a director of the CA src trusts.
func httpClient(src pki.Source) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = pki.ClientConfig(src, pki.Require(pki.RoleDirector))
	return &http.Client{Transport: t, Timeout: 10 * time.Second}
}

func do(t *testing.T, c *http.Client, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// concrete turns a route pattern into a request path.
func concrete(pattern string) (method, path string) {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		method, path = "GET", pattern+"nowhere"
	}
	r := strings.NewReplacer("{name}", "web", "{addr}", "198.51.100.21", "{port}", "80", "{id}", "aaaaaaaa")
	return method, r.Replace(path)
}

// putToken stores a token record and returns the token string.
func putToken(t *testing.T, store *fakeStore, spec pki.TokenSpec, fp string, now time.Time, revoke bool) string {
	t.Helper()
	rec, cred, err := pki.NewToken(spec, fp, now)
	if err != nil {
		t.Fatal(err)
	}
	store.must(fsm.PutToken{Token: fsmToken(rec)})
	if revoke {
		store.must(fsm.RevokeToken{ID: rec.ID, At: now.UTC()})
	}
	return cred.Encode()
}

// TestEveryRouteHasAnAccessRule walks the whole mux: every route has a rule, and each
// kind of caller gets exactly what its role allows. A route added without a rule fails
// here (and is refused at run time).
func TestEveryRouteHasAnAccessRule(t *testing.T) {
	ca := pkitest.NewCluster(t, "c1")
	s := newSecureServer(t, newFakeStore("d1", true), ca)
	s.store.must(webService, webRS1)
	fp := ca.CA.Fingerprint()
	now := time.Now()
	readToken := putToken(t, s.store, pki.TokenSpec{Role: pki.RoleOperator, Access: pki.AccessRead, TTL: time.Hour}, fp, now, false)
	for _, p := range s.srv.mux.patterns {
		if _, ok := routeRules[p]; !ok {
			t.Errorf("route %q has no access rule in routeRules", p)
		}
	}
	type caller struct {
		name  string
		src   pki.Source
		token string
		// may reports whether a route's rule lets this caller through.
		may func(rule) bool
	}
	allows := func(a pki.Access) func(rule) bool {
		return func(r rule) bool { return r.open || (!r.join && !r.directors && a.Includes(r.need)) }
	}
	callers := []caller{
		{"no credentials", ca.Trust(), "", func(r rule) bool { return r.open }},
		{"agent", ca.Agent("rs1"), "", func(r rule) bool { return r.open || r.agents }},
		{"operator read", ca.Operator("ro", pki.AccessRead), "", allows(pki.AccessRead)},
		{"operator operate", ca.Operator("ops", pki.AccessOperate), "", allows(pki.AccessOperate)},
		{"operator admin", ca.Operator("root", pki.AccessAdmin), "", allows(pki.AccessAdmin)},
		{"read token", ca.Trust(), readToken, allows(pki.AccessRead)},
		{"director", ca.Director("d2"), "", func(r rule) bool { return !r.join }},
	}
	for _, c := range callers {
		hc := httpClient(c.src)
		for _, p := range s.srv.mux.patterns {
			ru := routeRules[p]
			if ru.join {
				continue // the handler decides: TestJoinFlow
			}
			method, path := concrete(p)
			code, body := do(t, hc, method, s.ts.URL+path, c.token, "")
			refused := code == http.StatusUnauthorized || code == http.StatusForbidden
			switch {
			case code == 0:
				t.Errorf("%s: %s %s: %s", c.name, method, path, body)
			case c.may(ru) && refused:
				t.Errorf("%s: %s %s refused: %d %s", c.name, method, path, code, body)
			case !c.may(ru) && !refused:
				t.Errorf("%s: %s %s let through: %d %s", c.name, method, path, code, body)
			case !c.may(ru) && c.name == "no credentials" && code != http.StatusUnauthorized:
				t.Errorf("%s: %s %s: %d, want 401", c.name, method, path, code)
			case !c.may(ru) && c.name != "no credentials" && code != http.StatusForbidden:
				t.Errorf("%s: %s %s: %d, want 403", c.name, method, path, code)
			}
		}
	}
}

func TestRefusalsSayWhatIsMissing(t *testing.T) {
	ca := pkitest.NewCluster(t, "c1")
	s := newSecureServer(t, newFakeStore("d1", true), ca)
	fp, now := ca.CA.Fingerprint(), time.Now()
	expired := putToken(t, s.store, pki.TokenSpec{Role: pki.RoleOperator, Access: pki.AccessAdmin, TTL: time.Minute}, fp, now.Add(-time.Hour), false)
	revoked := putToken(t, s.store, pki.TokenSpec{Role: pki.RoleOperator, Access: pki.AccessAdmin, TTL: time.Hour}, fp, now, true)
	joinOnly := putToken(t, s.store, pki.TokenSpec{Role: pki.RoleAgent, TTL: time.Hour}, fp, now, false)
	tests := []struct {
		name  string
		src   pki.Source
		token string
		code  int
		says  string
	}{
		{"nothing", ca.Trust(), "", 401, "present a client certificate, or an operator token"},
		{"expired token", ca.Trust(), expired, 401, "expired"},
		{"revoked token", ca.Trust(), revoked, 401, "revoked"},
		{"a join token is no API credential", ca.Trust(), joinOnly, 403, "join token"},
		{"wrong secret", ca.Trust(), revoked[:14] + strings.Repeat("a", 26) + revoked[40:], 401, "does not match"},
		{"read operator writing", ca.Operator("ro", pki.AccessRead), "", 403, "has read access; this needs operate"},
		{"agent writing", ca.Agent("rs1"), "", 403, "agents may only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(t, httpClient(tt.src), "POST", s.ts.URL+"/v1/services", tt.token, `{"protocol":"tcp","vip":"192.0.2.1","port":80}`)
			if code != tt.code || !strings.Contains(body, tt.says) {
				t.Errorf("%d %s; want %d saying %q", code, body, tt.code, tt.says)
			}
		})
	}
	if s.store.applied != 0 {
		t.Errorf("%d commands applied", s.store.applied)
	}
}

// TestCertificatesTheAPIRefusesAtTheHandshake: another CA's, an expired one, a revoked
// one never get a request through.
func TestCertificatesTheAPIRefusesAtTheHandshake(t *testing.T) {
	ca := pkitest.NewCluster(t, "c1")
	s := newSecureServer(t, newFakeStore("d1", true), ca)
	other := pkitest.NewCluster(t, "c1")
	revoked := ca.Operator("gone", pki.AccessAdmin)
	s.store.must(fsm.RevokeCertificate{Serial: revoked.Leaf().SerialNumber.Text(16), At: time.Now().UTC()})
	for name, b := range map[string]*pki.Bundle{
		"another CA's": other.Operator("root", pki.AccessAdmin),
		"expired":      ca.ExpiredDirector("d9"),
		"revoked":      revoked,
	} {
		// The client trusts the server (the cluster's CA); the server must refuse it.
		src := &pki.Bundle{Cert: b.Cert, Identity: b.Identity, Roots: ca.Trust().Roots, CAs: ca.Trust().CAs}
		code, body := do(t, httpClient(src), "GET", s.ts.URL+"/v1/status", "", "")
		if code != 0 || !strings.Contains(body, "tls") {
			t.Errorf("%s certificate: %d %s, want the handshake refused", name, code, body)
		}
	}
}

func TestTheCAKeyNeverLeavesThroughTheAPI(t *testing.T) {
	ca := pkitest.NewCluster(t, "c1")
	s := newSecureServer(t, newFakeStore("d1", true), ca)
	keyPEM, _ := ca.CA.KeyPEM()
	s.store.must(fsm.SetCA{CA: fsm.ClusterCA{CertPEM: string(ca.CA.CertPEM()), KeyPEM: string(keyPEM)}}, webService)
	hc := httpClient(ca.Operator("root", pki.AccessAdmin))
	for _, path := range []string{"/v1/state", "/v1/status", "/v1/services", "/v1/tokens"} {
		code, body := do(t, hc, "GET", s.ts.URL+path, "", "")
		if code != 200 || strings.Contains(body, "PRIVATE KEY") || strings.Contains(body, string(keyPEM[30:60])) {
			t.Errorf("%s: %d, and the body holds the CA key or failed: %.200s", path, code, body)
		}
	}
}

// TestJoinFlow: an admin makes tokens; a director joiner obtains a certificate with its
// (single-use) token, an agent with its own for the address it connects from.
func TestJoinFlow(t *testing.T) {
	ca := pkitest.NewCluster(t, "c1")
	s := newSecureServer(t, newFakeStore("d1", true), ca)
	keyPEM, _ := ca.CA.KeyPEM()
	s.store.must(fsm.SetCA{CA: fsm.ClusterCA{CertPEM: string(ca.CA.CertPEM()), KeyPEM: string(keyPEM)}})
	admin := api.NewTLSClient(pki.ClientConfig(ca.Operator("root", pki.AccessAdmin), pki.Require(pki.RoleDirector)), s.addr())
	ctx := context.Background()
	mk := func(req api.TokenRequest) string {
		t.Helper()
		res, err := admin.CreateToken(ctx, req)
		if err != nil {
			t.Fatalf("create %s token: %v", req.Role, err)
		}
		return res.Token
	}
	join := func(token, id string, ips ...netip.Addr) (*pki.Bundle, error) {
		return enroll.Enroll(ctx, enroll.Request{Token: token, ID: id, IPs: ips, Directors: func() []string { return []string{s.addr()} },
			Files: pki.DataDirFiles(filepath.Join(t.TempDir(), id)), Timeout: 5 * time.Second})
	}

	dt := mk(api.TokenRequest{Role: "director", TTL: "1h"})
	b, err := join(dt, "d2", netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		t.Fatalf("director join: %v", err)
	}
	if b.Identity.Role != pki.RoleDirector || b.Identity.ID != "d2" || b.Identity.Cluster != "c1" {
		t.Errorf("joiner got %+v", b.Identity)
	}
	if _, err := join(dt, "d3"); !errors.Is(err, api.ErrUnauthenticated) || !strings.Contains(err.Error(), "single-use") {
		t.Errorf("second use of a director token: %v, want 401 saying it is single-use", err)
	}

	at := mk(api.TokenRequest{Role: "agent", TTL: "1h"})
	if _, err := join(at, "rs1", netip.MustParseAddr("10.0.0.21")); !errors.Is(err, fsm.ErrInvalid) {
		t.Errorf("an agent asking for an address it does not connect from: %v, want invalid", err)
	}
	ab, err := join(at, "rs1")
	if err != nil || ab.Identity.Role != pki.RoleAgent || !ab.Identity.HasIP(netip.MustParseAddr("127.0.0.1")) {
		t.Fatalf("agent join: %v %+v", err, ab)
	}
	var certified []netip.Addr
	s.store.View(func(st *fsm.State) { certified = st.CertifiedAddrs(fsm.RoleAgent, "rs1", time.Now()) })
	if len(certified) != 1 || certified[0] != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("certified addresses of rs1: %v", certified)
	}

	list, err := admin.Tokens(ctx)
	if err != nil || len(list) != 2 || list[0].State == "" {
		t.Fatalf("tokens: %v %+v", err, list)
	}
	if err := admin.RevokeToken(ctx, strings.Split(at, ".")[1], false); err != nil {
		t.Fatal(err)
	}
	if _, err := join(at, "rs2"); !errors.Is(err, api.ErrUnauthenticated) || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("a revoked agent token: %v, want 401 revoked", err)
	}

	// A token pinning another CA never reaches the cluster: the joiner refuses the server.
	other := pkitest.NewCluster(t, "c1")
	_, wrong, _ := pki.NewToken(pki.TokenSpec{Role: pki.RoleDirector, TTL: time.Hour}, other.CA.Fingerprint(), time.Now())
	if _, err := join(wrong.Encode(), "d4"); !errors.Is(err, pki.ErrCAMismatch) {
		t.Errorf("token of another CA: %v, want ErrCAMismatch", err)
	}
}

// TestAFollowerChecksItsCallerBeforeForwarding: the leader sees the forwarding director,
// so the follower must refuse what its caller may not do, and pass on who the caller is.
func TestAFollowerChecksItsCallerBeforeForwarding(t *testing.T) {
	ca := pkitest.NewCluster(t, "c1")
	leader := newSecureServer(t, newFakeStore("d1", true), ca)
	follower := newSecureServer(t, newFakeStore("d2", false), ca)
	follower.store.leaderAddr = leader.addr()
	body := `{"protocol":"tcp","vip":"192.0.2.1","port":80}`
	if code, b := do(t, httpClient(ca.Operator("ro", pki.AccessRead)), "POST", follower.ts.URL+"/v1/services", "", body); code != 403 {
		t.Errorf("read operator through a follower: %d %s, want 403", code, b)
	}
	if leader.store.applied != 0 {
		t.Fatal("the leader applied a write the follower should have refused")
	}
	if code, b := do(t, httpClient(ca.Operator("ops", pki.AccessOperate)), "POST", follower.ts.URL+"/v1/services", "", body); code != 201 {
		t.Errorf("operate operator through a follower: %d %s, want 201 from the leader", code, b)
	}
	if leader.store.applied != 1 {
		t.Errorf("the leader applied %d writes, want 1", leader.store.applied)
	}
}
