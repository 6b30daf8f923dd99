package pki_test

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/pki"
	"github.com/raftlvs/raftlvs/pki/pkitest"
)

func TestAuthenticateTakesACertificateOrAnOperatorToken(t *testing.T) {
	c := pkitest.NewCluster(t, "c0ffee")
	operator, opCred := newToken(t, pki.TokenSpec{Role: pki.RoleOperator, Access: pki.AccessRead, TTL: time.Hour})
	join, joinCred := newToken(t, pki.TokenSpec{Role: pki.RoleDirector, TTL: time.Hour})
	store := map[string]pki.Token{operator.ID: operator, join.ID: join}
	auth := pki.Authenticator{
		Tokens: func(id string) (pki.Token, bool) { t, ok := store[id]; return t, ok },
		Now:    func() time.Time { return t0.Add(time.Minute) },
	}
	withCert := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c.Operator("alice", pki.AccessAdmin).Leaf()}}

	id, err := auth.Authenticate(withCert, "")
	if err != nil || id.ID != "alice" || id.Access != pki.AccessAdmin {
		t.Errorf("certificate: %+v, %v", id, err)
	}
	id, err = auth.Authenticate(&tls.ConnectionState{}, "Bearer "+opCred.Encode())
	if err != nil || id.Role != pki.RoleOperator || id.Access != pki.AccessRead || id.Token != operator.ID {
		t.Errorf("operator token: %+v, %v", id, err)
	}
	if !id.Allows(pki.AccessRead) || id.Allows(pki.AccessOperate) {
		t.Errorf("a read token's identity allows the wrong things: %+v", id)
	}
	id, err = auth.Authenticate(nil, "bearer "+opCred.Encode())
	if err != nil {
		t.Errorf("the scheme is case-insensitive: %v", err)
	}

	expired := auth
	expired.Now = func() time.Time { return t0.Add(2 * time.Hour) }
	for _, tc := range []struct {
		name   string
		auth   pki.Authenticator
		header string
		want   error
		status int
	}{
		{"nothing", auth, "", pki.ErrUnauthenticated, http.StatusUnauthorized},
		{"basic auth", auth, "Basic YWxpY2U6cHc=", pki.ErrUnauthenticated, http.StatusUnauthorized},
		{"garbage token", auth, "Bearer nope", pki.ErrTokenMalformed, http.StatusUnauthorized},
		{"expired token", expired, "Bearer " + opCred.Encode(), pki.ErrTokenExpired, http.StatusUnauthorized},
		{"join token", auth, "Bearer " + joinCred.Encode(), pki.ErrForbidden, http.StatusForbidden},
	} {
		_, err := tc.auth.Authenticate(&tls.ConnectionState{}, tc.header)
		wantIs(t, tc.name, err, tc.want)
		if got := pki.HTTPStatus(err); got != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.status)
		}
	}
	if pki.HTTPStatus(pki.Authorize(id, pki.AccessAdmin)) != http.StatusForbidden {
		t.Error("a denied authorization is not a 403")
	}
}
