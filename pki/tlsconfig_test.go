package pki_test

import (
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/pki"
	"github.com/raftlvs/raftlvs/pki/pkitest"
)

func TestDirectorServersRefuseEveryClientButADirectorOfTheirCluster(t *testing.T) {
	c := pkitest.NewCluster(t, "c0ffee")
	other := pkitest.NewCluster(t, "c0ffee") // same name, another CA
	server := pki.ServerConfig(c.Director("d1"), pki.Require(pki.RoleDirector))

	for _, tc := range []struct {
		name   string
		client *pki.Bundle
		want   error // nil: accepted
	}{
		{"director", c.Director("d2"), nil},
		{"no certificate", c.Trust(), pki.ErrNoCertificate},
		{"another CA", other.Director("d2"), pki.ErrUnknownCA},
		{"expired", c.ExpiredDirector("d2"), pki.ErrCertExpired},
		{"agent", c.Agent("a1"), pki.ErrWrongRole},
		{"operator", c.Operator("alice", pki.AccessAdmin), pki.ErrWrongRole},
	} {
		// The client trusts the server's CA, so only the server's verdict is tested.
		res := handshake(t, server, pki.ClientConfig(trusting(t, tc.client, c), pki.Require(pki.RoleDirector)))
		if tc.want == nil {
			if res.serverErr != nil || res.clientErr != nil {
				t.Errorf("%s: refused: server %v, client %v", tc.name, res.serverErr, res.clientErr)
			}
			if id, ok := pki.PeerIdentity(&res.serverCS); !ok || id.ID != "d2" {
				t.Errorf("%s: server sees peer %+v", tc.name, id)
			}
			continue
		}
		wantIs(t, tc.name+" (server)", res.serverErr, tc.want)
		if res.clientErr == nil {
			t.Errorf("%s: the client did not notice it was refused", tc.name)
		}
	}
}

// trusting is b with c's CA added to what it trusts (a client from another CA that
// trusts the real server, so the server is the side that refuses).
func trusting(t *testing.T, b *pki.Bundle, c *pkitest.Cluster) *pki.Bundle {
	t.Helper()
	nb := *b
	nb.Roots = b.Roots.Clone()
	nb.Roots.AddCert(c.CA.Cert)
	nb.CAs = append(append([]*x509.Certificate(nil), b.CAs...), c.CA.Cert)
	return &nb
}

func TestClientsRefuseAServerThatIsNotADirector(t *testing.T) {
	c := pkitest.NewCluster(t, "c0ffee")
	other := pkitest.NewCluster(t, "c0ffee")
	client := pki.ClientConfig(c.Director("d1"), pki.Require(pki.RoleDirector))
	for _, tc := range []struct {
		name   string
		server *pki.Bundle
		want   error
	}{
		{"agent posing as a server", c.Agent("a1"), pki.ErrWrongRole},
		{"another CA", trusting(t, other.Director("d9"), c), pki.ErrUnknownCA},
		{"expired director", c.ExpiredDirector("d2"), pki.ErrCertExpired},
	} {
		res := handshake(t, pki.ServerConfig(tc.server, pki.Require()), client)
		wantIs(t, tc.name, res.clientErr, tc.want)
	}
}

func TestWithIDRefusesAnotherNode(t *testing.T) {
	c := pkitest.NewCluster(t, "c0ffee")
	server := pki.ServerConfig(c.Director("d2"), pki.Require(pki.RoleDirector))
	res := handshake(t, server, pki.ClientConfig(c.Director("d1"), pki.Require(pki.RoleDirector).WithID("d3")))
	wantIs(t, "d2 for d3", res.clientErr, pki.ErrWrongID)
	if !strings.Contains(res.clientErr.Error(), "d2") || !strings.Contains(res.clientErr.Error(), "d3") {
		t.Errorf("the error names neither node: %v", res.clientErr)
	}
	res = handshake(t, server, pki.ClientConfig(c.Director("d1"), pki.Require(pki.RoleDirector).WithID("d2")))
	if res.clientErr != nil {
		t.Errorf("d2 for d2: %v", res.clientErr)
	}
}

func TestAPIServersLetTokenClientsInButStillVerifyCertificates(t *testing.T) {
	c := pkitest.NewCluster(t, "c0ffee")
	other := pkitest.NewCluster(t, "c0ffee")
	server := pki.APIServerConfig(c.Director("d1"), pki.Require())
	server.MinVersion = tls.VersionTLS13

	res := handshake(t, server, pki.ClientConfig(c.Trust(), pki.Require(pki.RoleDirector)))
	if res.serverErr != nil || res.clientErr != nil {
		t.Errorf("a client without certificate (a token holder) was refused: %v / %v", res.serverErr, res.clientErr)
	}
	if _, ok := pki.PeerIdentity(&res.serverCS); ok {
		t.Error("a client without certificate has an identity")
	}
	res = handshake(t, server, pki.ClientConfig(trusting(t, other.Operator("mallory", pki.AccessAdmin), c), pki.Require(pki.RoleDirector)))
	wantIs(t, "foreign operator", res.serverErr, pki.ErrUnknownCA)
	res = handshake(t, server, pki.ClientConfig(c.Agent("a1"), pki.Require(pki.RoleDirector)))
	if id, ok := pki.PeerIdentity(&res.serverCS); res.serverErr != nil || !ok || id.Role != pki.RoleAgent {
		t.Errorf("an agent's certificate: %+v, %v", id, res.serverErr)
	}
}

func TestRevokedAndNotYetValidCertificatesAreRefused(t *testing.T) {
	c := pkitest.NewCluster(t, "c0ffee")
	d2 := c.Director("d2")
	revoked := pki.Require(pki.RoleDirector)
	revoked.Revoked = func(cert *x509.Certificate) bool { return cert.SerialNumber.Cmp(d2.Leaf().SerialNumber) == 0 }
	res := handshake(t, pki.ServerConfig(c.Director("d1"), revoked), pki.ClientConfig(d2, pki.Require(pki.RoleDirector)))
	wantIs(t, "revoked", res.serverErr, pki.ErrCertRevoked)
	res = handshake(t, pki.ServerConfig(c.Director("d1"), revoked), pki.ClientConfig(c.Director("d3"), pki.Require(pki.RoleDirector)))
	if res.serverErr != nil {
		t.Errorf("another director was refused: %v", res.serverErr)
	}

	// A verifier whose clock is two hours behind the signer's (vault#11150).
	behind := pki.Require(pki.RoleDirector)
	behind.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	res = handshake(t, pki.ServerConfig(c.Director("d1"), behind), pki.ClientConfig(c.Director("d4"), pki.Require(pki.RoleDirector)))
	wantIs(t, "clock behind", res.serverErr, pki.ErrCertNotYetValid)
	if !strings.Contains(res.serverErr.Error(), "clock skew") {
		t.Errorf("the error does not hint at the clock: %v", res.serverErr)
	}
	// Within Backdate it is fine.
	behind.Now = func() time.Time { return time.Now().Add(-pki.Backdate / 2) }
	res = handshake(t, pki.ServerConfig(c.Director("d1"), behind), pki.ClientConfig(c.Director("d5"), pki.Require(pki.RoleDirector)))
	if res.serverErr != nil {
		t.Errorf("a clock half an hour behind refused a fresh certificate: %v", res.serverErr)
	}
}

func TestAnotherClusterOfTheSameCAIsRefused(t *testing.T) {
	// An operator's PKI that signs for two clusters: the URI's cluster tells them apart.
	c := pkitest.NewCluster(t, "east")
	c.CA.ClusterID = "west"
	west := c.Director("w1")
	c.CA.ClusterID = "east"
	east := pki.ServerConfig(c.Director("e1"), pki.Require(pki.RoleDirector))
	res := handshake(t, east, pki.ClientConfig(west, pki.Require(pki.RoleDirector)))
	wantIs(t, "west director dialling east", res.clientErr, pki.ErrWrongCluster)
	// A west client told to accept east: east still refuses it.
	anyCluster := pki.Require(pki.RoleDirector)
	anyCluster.Cluster = "east"
	res = handshake(t, east, pki.ClientConfig(west, anyCluster))
	wantIs(t, "west director at east", res.serverErr, pki.ErrWrongCluster)
}

func TestPinnedFirstContactTrustsOnlyTheTokensCA(t *testing.T) {
	c := pkitest.NewCluster(t, "c0ffee")
	other := pkitest.NewCluster(t, "c0ffee")
	joiner, err := pki.PinnedClientConfig(c.CA.Fingerprint(), nil)
	if err != nil {
		t.Fatal(err)
	}
	res := handshake(t, pki.APIServerConfig(c.Director("d1"), pki.Require()), joiner)
	if res.clientErr != nil {
		t.Fatalf("the cluster's director was refused: %v", res.clientErr)
	}
	ca, err := pki.PinnedCA(&res.clientCS, c.CA.Fingerprint(), nil)
	if err != nil || !ca.Equal(c.CA.Cert) {
		t.Errorf("PinnedCA: %v, %v", ca, err)
	}
	if err := pki.CheckPin(ca, c.CA.Fingerprint()); err != nil {
		t.Error(err)
	}

	res = handshake(t, pki.APIServerConfig(other.Director("d1"), pki.Require()), joiner)
	wantIs(t, "another CA", res.clientErr, pki.ErrCAMismatch)
	if !strings.Contains(res.clientErr.Error(), other.CA.Fingerprint()) {
		t.Errorf("the error does not show the CA found: %v", res.clientErr)
	}
	// The right CA, but not a director: an agent cannot pose as the cluster.
	res = handshake(t, pki.APIServerConfig(c.Agent("a1"), pki.Require()), joiner)
	wantIs(t, "agent server", res.clientErr, pki.ErrWrongRole)

	wantIs(t, "CheckPin", pki.CheckPin(other.CA.Cert, c.CA.Fingerprint()), pki.ErrCAMismatch)
	_, err = pki.PinnedClientConfig("md5:abc", nil)
	wantIs(t, "bad pin", err, pki.ErrMalformed)
}
