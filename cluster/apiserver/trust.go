package apiserver

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/fsm"
	"github.com/raftlvs/raftlvs/pki"
)

// errInsecure: the endpoint needs the cluster's PKI, and this director runs without.
func errInsecure(what string) error {
	return fieldErr("tls", fsm.ErrConflict, "%s needs TLS, and this director runs with --insecure", what)
}

// clusterCA is the cluster's signing CA from the replicated state.
func (s *Server) clusterCA() (*pki.CA, error) {
	var rec fsm.ClusterCA
	var ok bool
	var clusterID string
	s.store.View(func(st *fsm.State) { rec, ok = st.CA(); clusterID = st.ClusterID() })
	if !ok {
		return nil, fieldErr("ca", fsm.ErrConflict, "this cluster holds no CA key (its certificates come from the operator's own PKI): issue certificates there")
	}
	ca, err := pki.ParseCA([]byte(rec.CertPEM), []byte(rec.KeyPEM))
	if err != nil {
		return nil, fmt.Errorf("the cluster CA in the replicated state: %w", err)
	}
	if ca.ClusterID == "" {
		ca.ClusterID = clusterID
	}
	return ca, nil
}

// pinnedFingerprint is the CA a token pins: the one that signs this director's
// certificate, which is what a joiner finds in the chain a director serves.
func (s *Server) pinnedFingerprint() (string, error) {
	b := s.sec.TLS.Current()
	if b == nil || len(b.Cert.Certificate) == 0 {
		return "", fmt.Errorf("this director has no certificate")
	}
	chain, err := x509Chain(b)
	if err != nil {
		return "", err
	}
	return pki.Fingerprint(chain[len(chain)-1]), nil
}

// createToken: POST /v1/tokens (admin). The secret is in the answer and nowhere else:
// the cluster keeps its hash.
func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	if s.sec == nil {
		s.writeError(w, r, errInsecure("a token"))
		return
	}
	var req api.TokenRequest
	body, err := decodeRequest(r, api.MaxBodyBytes, &req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	spec, err := tokenSpec(req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if spec.Role != pki.RoleOperator {
		if _, err := s.clusterCA(); err != nil {
			s.writeError(w, r, fmt.Errorf("a %s token obtains a certificate signed by the cluster: %w", spec.Role, err))
			return
		}
	}
	if !s.store.IsLeader() {
		s.forward(w, r, body) // the leader makes it: one token, one record
		return
	}
	fp, err := s.pinnedFingerprint()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rec, cred, err := pki.NewToken(spec, fp, s.sec.Now())
	if err != nil {
		s.writeError(w, r, fieldErr("token", fsm.ErrInvalid, "%v", err))
		return
	}
	t := fsmToken(rec)
	// Director tokens make voters: one token, one director.
	t.SingleUse = spec.Role == pki.RoleDirector
	if s.apply(w, r, body, fsm.PutToken{Token: t}) {
		who, _ := caller(r)
		s.log.Info("token created", "token", cred.String(), "role", t.Role, "access", t.Access, "expires", t.Expires, "by", who.String())
		writeJSON(w, http.StatusCreated, api.TokenCreated{Token: cred.Encode(), Info: tokenInfo(t, s.sec.Now())})
	}
}

func tokenSpec(req api.TokenRequest) (pki.TokenSpec, error) {
	role, err := pki.ParseRole(req.Role)
	if err != nil {
		return pki.TokenSpec{}, fieldErr("role", fsm.ErrInvalid, "%v", err)
	}
	spec := pki.TokenSpec{Role: role, Networks: req.Networks, Description: req.Description, TTL: pki.DefaultTokenTTL}
	if req.Access != "" {
		if spec.Access, err = pki.ParseAccess(req.Access); err != nil {
			return pki.TokenSpec{}, fieldErr("access", fsm.ErrInvalid, "%v", err)
		}
	}
	if req.TTL != "" {
		ttl, err := time.ParseDuration(req.TTL)
		switch {
		case req.TTL == "0":
			spec.TTL, spec.NoExpiry = 0, true
		case err != nil:
			return pki.TokenSpec{}, fieldErr("ttl", fsm.ErrInvalid, "%q is not a duration (24h, 30m; 0 for no expiry)", req.TTL)
		case ttl == 0:
			spec.TTL, spec.NoExpiry = 0, true
		default:
			spec.TTL = ttl
		}
	}
	return spec, nil
}

func fsmToken(t pki.Token) fsm.Token {
	return fsm.Token{
		ID: t.ID, Role: string(t.Role), Access: string(t.Access), Networks: t.Networks, Hash: t.Hash,
		Created: t.Created.UTC().Round(0), Expires: t.Expires.UTC().Round(0), Description: t.Description,
	}
}

func tokenInfo(t fsm.Token, now time.Time) api.TokenInfo {
	info := api.TokenInfo{
		ID: t.ID, Role: t.Role, Access: t.Access, Networks: t.Networks, Created: t.Created, Expires: t.Expires,
		Revoked: t.Revoked, SingleUse: t.SingleUse, Used: t.Used, UsedBy: t.UsedBy, Description: t.Description, State: "valid",
	}
	switch {
	case !t.Revoked.IsZero():
		info.State = "revoked"
	case !t.Used.IsZero():
		info.State = "used"
	case !t.Expires.IsZero() && !now.Before(t.Expires):
		info.State = "expired"
	}
	return info
}

// listTokens: GET /v1/tokens (admin).
func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	if s.sec != nil {
		now = s.sec.Now()
	}
	list := api.TokenList{Tokens: []api.TokenInfo{}}
	s.store.View(func(st *fsm.State) {
		for _, t := range st.Tokens() {
			list.Tokens = append(list.Tokens, tokenInfo(t, now))
		}
	})
	writeJSON(w, http.StatusOK, list)
}

// revokeToken: DELETE /v1/tokens/{id} (admin) revokes; ?remove=true forgets the record.
func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var c fsm.Command = fsm.RevokeToken{ID: id, At: time.Now().UTC().Round(0)}
	if s.sec != nil {
		c = fsm.RevokeToken{ID: id, At: s.sec.Now().UTC().Round(0)}
	}
	if r.URL.Query().Get("remove") == "true" {
		c = fsm.DeleteToken{ID: id}
	}
	if s.apply(w, r, nil, c) {
		w.WriteHeader(http.StatusNoContent)
	}
}

// signCertificate: POST /v1/certificates. A joiner sends its join token as a bearer
// and a request for a key that never leaves it; the token decides the role, the id is
// the joiner's, and an agent's addresses must be the one it connects from (or inside
// the token's networks). Without a token, a node with a good certificate renews it:
// same role, id and addresses. The leader signs with the cluster CA, logs the
// certificate's record (and a director token's use) in one batch, and answers with the
// certificate and the CA.
func (s *Server) signCertificate(w http.ResponseWriter, r *http.Request) {
	if s.sec == nil {
		s.writeError(w, r, errInsecure("a certificate"))
		return
	}
	var req api.CertificateRequest
	body, err := decodeRequest(r, api.MaxBodyBytes, &req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !s.store.IsLeader() {
		// The leader checks the token (a follower may not have its record yet), signs,
		// and logs what it signed.
		s.forward(w, r, body)
		return
	}
	csr, err := pki.ParseCSR([]byte(req.CSR))
	if err != nil {
		s.writeError(w, r, fieldErr("csr", fsm.ErrInvalid, "%v", err))
		return
	}
	grant, tok, err := s.grantFor(r, req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ca, err := s.clusterCA()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	now := s.sec.Now()
	cert, err := ca.SignCSR(csr, grant, now)
	if err != nil {
		s.writeError(w, r, fieldErr("csr", fsm.ErrInvalid, "%v", err))
		return
	}
	batch := fsm.Batch{Commands: []fsm.Command{fsm.RecordCertificate{Certificate: fsm.Certificate{
		Serial: cert.SerialNumber.Text(16), Role: string(grant.Role), ID: grant.ID, IPs: grant.IPs, NotAfter: cert.NotAfter.UTC(),
	}}}}
	if tok != nil && tok.SingleUse && tok.Used.IsZero() {
		batch.Commands = append(batch.Commands, fsm.RevokeToken{ID: tok.ID, At: now.UTC().Round(0), Used: true, UsedBy: grant.ID})
	}
	if !s.applyBatch(w, r, body, batch) {
		return
	}
	how := "renewal"
	if tok != nil {
		how = "token " + tok.ID
	}
	s.log.Info("certificate issued", "role", grant.Role, "id", grant.ID, "ips", grant.IPs, "serial", cert.SerialNumber.Text(16),
		"not_after", cert.NotAfter, "by", how, "from", s.source(r))
	cas := pki.EncodeCerts(ca.Cert)
	for _, c := range s.sec.TLS.Current().CAs {
		if !c.Equal(ca.Cert) {
			cas = append(cas, pki.EncodeCerts(c)...)
		}
	}
	writeJSON(w, http.StatusCreated, api.CertificateResponse{Certificate: string(pki.EncodeCerts(cert)), CA: string(cas)})
}

// grantFor decides what the certificate may say: from the bearer token if there is one,
// else from the caller's own certificate (a renewal).
func (s *Server) grantFor(r *http.Request, req api.CertificateRequest) (pki.Grant, *fsm.Token, error) {
	if auth := r.Header.Get("Authorization"); auth != "" {
		raw, ok := bearer(auth)
		if !ok {
			return pki.Grant{}, nil, fmt.Errorf("%w: Authorization scheme; want Bearer <token>", pki.ErrUnauthenticated)
		}
		cred, err := pki.ParseCredential(raw)
		if err != nil {
			return pki.Grant{}, nil, err
		}
		var rec fsm.Token
		var found bool
		s.store.View(func(st *fsm.State) { rec, found = st.Token(cred.ID) })
		if found && !rec.Used.IsZero() && rec.UsedBy != req.ID {
			return pki.Grant{}, nil, fmt.Errorf("%w: token %s was used at %s to certify %s; director tokens are single-use (the same id may ask again): create another with raftlvs token create --role director",
				pki.ErrTokenRevoked, rec.ID, rec.Used.UTC().Format(time.RFC3339), rec.UsedBy)
		}
		lookup := s.lookupToken
		if found && !rec.Used.IsZero() {
			// The same joiner asking again (its answer was lost): a single-use token
			// stays bound to the id it was used for.
			lookup = func(string) (pki.Token, bool) { rec := rec; rec.Used = time.Time{}; return pkiToken(rec), true }
		}
		t, err := pki.VerifyToken(cred, lookup, s.sec.Now())
		if err != nil {
			return pki.Grant{}, nil, err
		}
		g, err := t.Grant(req.ID, req.IPs, s.source(r))
		if err != nil {
			return pki.Grant{}, nil, fieldErr("ips", fsm.ErrInvalid, "%v", err)
		}
		return g, &rec, nil
	}
	id, ok := caller(r)
	if !ok {
		return pki.Grant{}, nil, fmt.Errorf("%w: send a join token as Authorization: Bearer (raftlvs token create), or renew with the current certificate", pki.ErrUnauthenticated)
	}
	if id.Token != "" || id.ID != req.ID {
		return pki.Grant{}, nil, fmt.Errorf("%w: %s may renew only its own certificate, not %s's", pki.ErrForbidden, id, req.ID)
	}
	if len(req.IPs) > 0 && !sameAddrs(req.IPs, id.IPs) {
		return pki.Grant{}, nil, fieldErr("ips", fsm.ErrInvalid, "a renewal keeps the addresses %v; a new token certifies others", id.IPs)
	}
	return pki.RenewalGrant(id, 0), nil, nil
}

func bearer(auth string) (string, bool) {
	const p = "Bearer "
	if len(auth) > len(p) && (auth[:len(p)] == p || auth[:len(p)] == "bearer ") {
		return auth[len(p):], true
	}
	return "", false
}

func sameAddrs(a, b []netip.Addr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Unmap() != b[i].Unmap() {
			return false
		}
	}
	return true
}

// removeDirector removes a director and revokes the certificates the cluster issued
// to it: a removed director's certificate would otherwise stay a director's, Raft and
// admin API included, until it expires.
func (s *Server) removeDirector(ctx context.Context, id string) error {
	if err := s.store.Remove(ctx, id); err != nil {
		return err
	}
	var revoke []fsm.Command
	now := time.Now().UTC().Round(0)
	s.store.View(func(st *fsm.State) {
		for _, c := range st.Certificates() {
			if c.Role == fsm.RoleDirector && c.ID == id && c.Revoked.IsZero() {
				revoke = append(revoke, fsm.RevokeCertificate{Serial: c.Serial, At: now})
			}
		}
	})
	if len(revoke) == 0 {
		return nil
	}
	if err := s.store.Apply(ctx, fsm.Batch{Commands: revoke}); err != nil && !errors.Is(err, fsm.ErrNotFound) {
		return fmt.Errorf("director %s removed; revoke its certificates: %w", id, err)
	}
	s.log.Info("director removed and its certificates revoked", "id", id, "certificates", len(revoke))
	return nil
}

func x509Chain(b *pki.Bundle) ([]*x509.Certificate, error) {
	out := make([]*x509.Certificate, 0, len(b.Cert.Certificate))
	for _, der := range b.Cert.Certificate {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("this director's certificate chain: %w", err)
		}
		out = append(out, c)
	}
	return out, nil
}
