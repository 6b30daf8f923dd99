package pki_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/pki"
	"github.com/raftlvs/raftlvs/pki/pkitest"
)

func TestSignCSRCertifiesTheGrantAndNothingTheRequestAsks(t *testing.T) {
	c := pkitest.NewCluster(t, "c0ffee")
	key, _ := pki.GenerateKey()
	// A greedy request: a director URI, other names and addresses.
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:     pkix.Name{CommonName: "root"},
		DNSNames:    []string{pki.DirectorServerName, "evil.example"},
		IPAddresses: []net.IP{net.ParseIP("10.9.9.9")},
		URIs:        []*url.URL{{Scheme: "raftlvs", Host: "c0ffee", Path: "/director/d1"}},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.ParseCSR(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	rs := netip.MustParseAddr("192.0.2.10")
	cert, err := c.CA.SignCSR(csr, pki.Grant{Role: pki.RoleAgent, ID: "web-01", IPs: []netip.Addr{rs}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	id, err := pki.IdentityOf(cert)
	if err != nil {
		t.Fatal(err)
	}
	if id.Role != pki.RoleAgent || id.ID != "web-01" || len(cert.URIs) != 1 {
		t.Errorf("identity %+v, URIs %v: want agent web-01 only", id, cert.URIs)
	}
	if len(cert.DNSNames) != 0 || len(cert.IPAddresses) != 1 || !cert.IPAddresses[0].Equal(net.IP(rs.AsSlice())) {
		t.Errorf("names %v, addresses %v: want only %v", cert.DNSNames, cert.IPAddresses, rs)
	}
	if cert.IsCA || cert.Subject.CommonName != "web-01" {
		t.Errorf("IsCA=%v CN=%q", cert.IsCA, cert.Subject.CommonName)
	}
	if !samePub(cert, key.Public()) {
		t.Error("the certificate is not for the request's key")
	}
}

func samePub(cert *x509.Certificate, pub crypto.PublicKey) bool {
	k, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(pub)
}

func TestCertificatesOfEachRoleHaveTheirUsages(t *testing.T) {
	c := pkitest.NewCluster(t, "c0ffee")
	director := c.Director("d1").Leaf()
	agent := c.Agent("a1").Leaf()
	operator := c.Operator("alice", pki.AccessRead).Leaf()

	server := x509.ExtKeyUsageServerAuth
	if !slices.Contains(director.ExtKeyUsage, server) || !slices.Contains(director.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		t.Errorf("director usages %v: want server and client", director.ExtKeyUsage)
	}
	if !slices.Equal(director.DNSNames, []string{pki.DirectorServerName}) {
		t.Errorf("director names %v", director.DNSNames)
	}
	for name, cert := range map[string]*x509.Certificate{"agent": agent, "operator": operator} {
		if slices.Contains(cert.ExtKeyUsage, server) || len(cert.DNSNames) > 0 {
			t.Errorf("%s certificate can serve TLS: usages %v names %v", name, cert.ExtKeyUsage, cert.DNSNames)
		}
	}
	if len(operator.IPAddresses) != 0 {
		t.Errorf("operator certificate names %v", operator.IPAddresses)
	}
}

func TestIssueRefusesGrantsThatMakeNoSense(t *testing.T) {
	c := pkitest.NewCluster(t, "c0ffee")
	key, _ := pki.GenerateKey()
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ip := []netip.Addr{netip.MustParseAddr("192.0.2.1")}
	for name, tc := range map[string]struct {
		g   pki.Grant
		pub any
	}{
		"agent without addresses": {pki.Grant{Role: pki.RoleAgent, ID: "a1"}, key.Public()},
		"operator with addresses": {pki.Grant{Role: pki.RoleOperator, ID: "o", Access: pki.AccessRead, IPs: ip}, key.Public()},
		"operator without access": {pki.Grant{Role: pki.RoleOperator, ID: "o"}, key.Public()},
		"director with access":    {pki.Grant{Role: pki.RoleDirector, ID: "d1", Access: pki.AccessAdmin}, key.Public()},
		"no role":                 {pki.Grant{ID: "d1"}, key.Public()},
		"bad id":                  {pki.Grant{Role: pki.RoleDirector, ID: "d 1"}, key.Public()},
		"negative validity":       {pki.Grant{Role: pki.RoleDirector, ID: "d1", Validity: -time.Hour}, key.Public()},
		"1024-bit RSA key":        {pki.Grant{Role: pki.RoleDirector, ID: "d1"}, &weak.PublicKey},
	} {
		_, err := c.CA.Issue(tc.pub, tc.g, time.Now())
		wantIs(t, name, err, pki.ErrBadGrant)
	}
	noCluster := *c.CA
	noCluster.ClusterID = ""
	_, err = noCluster.Issue(key.Public(), pki.Grant{Role: pki.RoleDirector, ID: "d1"}, time.Now())
	wantIs(t, "CA without cluster id", err, pki.ErrBadGrant)
}

func TestIssuedCertificatesAreBackdatedAndNeverOutliveTheCA(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ca, err := pki.NewCA("c0ffee", now)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := pki.GenerateKey()
	g := pki.Grant{Role: pki.RoleDirector, ID: "d1"}

	// Issued at the CA's creation: backdating stops at the CA's own start.
	cert, err := ca.Issue(key.Public(), g, now)
	if err != nil {
		t.Fatal(err)
	}
	if !cert.NotBefore.Equal(ca.Cert.NotBefore) || !cert.NotAfter.Equal(now.Add(pki.DefaultDirectorValidity)) {
		t.Errorf("validity %v..%v", cert.NotBefore, cert.NotAfter)
	}
	// Issued a day later: backdated by Backdate.
	later := now.Add(24 * time.Hour)
	cert, _ = ca.Issue(key.Public(), g, later)
	if !cert.NotBefore.Equal(later.Add(-pki.Backdate)) {
		t.Errorf("NotBefore %v, want %v", cert.NotBefore, later.Add(-pki.Backdate))
	}
	// Near the CA's end: cut at the CA's NotAfter.
	late := ca.Cert.NotAfter.Add(-24 * time.Hour)
	cert, _ = ca.Issue(key.Public(), g, late)
	if !cert.NotAfter.Equal(ca.Cert.NotAfter) {
		t.Errorf("NotAfter %v, want the CA's %v", cert.NotAfter, ca.Cert.NotAfter)
	}
	// After the CA's end: refused.
	_, err = ca.Issue(key.Public(), g, ca.Cert.NotAfter.Add(time.Second))
	wantIs(t, "issue after the CA expired", err, pki.ErrCAExpired)
}

func TestRenewalIsDueTwoThirdsIntoTheLifetime(t *testing.T) {
	c := pkitest.NewCluster(t, "c0ffee")
	cert := c.Director("d1").Leaf()
	at := pki.RenewAt(cert)
	life := cert.NotAfter.Sub(cert.NotBefore)
	if want := cert.NotBefore.Add(life * 2 / 3); at.Sub(want).Abs() > time.Second {
		t.Errorf("RenewAt %v, want %v", at, want)
	}
	if pki.NeedsRenewal(cert, at.Add(-time.Second)) || !pki.NeedsRenewal(cert, at) {
		t.Error("NeedsRenewal does not switch at RenewAt")
	}
	id, _ := pki.IdentityOf(cert)
	g := pki.RenewalGrant(id, time.Hour)
	if g.Role != id.Role || g.ID != id.ID || !slices.Equal(g.IPs, id.IPs) || g.Validity != time.Hour {
		t.Errorf("renewal grant %+v for %+v", g, id)
	}
}

func TestParseCSRRefusesATamperedRequest(t *testing.T) {
	key, _ := pki.GenerateKey()
	csrPEM, err := pki.NewCSR(key, "d1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pki.ParseCSR(csrPEM); err != nil {
		t.Fatalf("a good request was refused: %v", err)
	}
	block, _ := pem.Decode(csrPEM)
	block.Bytes[len(block.Bytes)-3] ^= 0xff // inside the signature
	_, err = pki.ParseCSR(pem.EncodeToMemory(block))
	wantIs(t, "tampered request", err, pki.ErrMalformed)
	_, err = pki.ParseCSR([]byte("garbage"))
	wantIs(t, "garbage", err, pki.ErrMalformed)
}
