// Package pkitest makes real certificates for tests: a cluster CA and bundles of every
// role, valid or expired, as pki issues them.
package pkitest

import (
	"net/netip"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/pki"
)

// caAge: the test CA was created this long ago, so a test can issue certificates that
// have already expired (issued two years ago for one year) from a CA valid today.
const caAge = 2 * 365 * 24 * time.Hour

// Cluster is a test cluster's CA.
type Cluster struct {
	t  testing.TB
	CA *pki.CA
}

// NewCluster makes a CA for cluster id.
func NewCluster(t testing.TB, id string) *Cluster {
	t.Helper()
	ca, err := pki.NewCA(id, time.Now().Add(-caAge))
	if err != nil {
		t.Fatalf("new CA: %v", err)
	}
	return &Cluster{t: t, CA: ca}
}

// Issue makes a key and a certificate for g, issued at now, and bundles them with the CA.
func (c *Cluster) Issue(g pki.Grant, now time.Time) *pki.Bundle {
	c.t.Helper()
	key, err := pki.GenerateKey()
	if err != nil {
		c.t.Fatal(err)
	}
	cert, err := c.CA.Issue(key.Public(), g, now)
	if err != nil {
		c.t.Fatalf("issue %s %s: %v", g.Role, g.ID, err)
	}
	b, err := pki.NewBundle(cert, key, c.CA.Cert)
	if err != nil {
		c.t.Fatalf("bundle %s %s: %v", g.Role, g.ID, err)
	}
	return b
}

// Director is a valid director bundle naming 127.0.0.1.
func (c *Cluster) Director(id string) *pki.Bundle {
	return c.Issue(pki.Grant{Role: pki.RoleDirector, ID: id, IPs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}, time.Now())
}

// Agent is a valid agent bundle for the given real-server addresses (127.0.0.1 if none).
func (c *Cluster) Agent(id string, ips ...netip.Addr) *pki.Bundle {
	if len(ips) == 0 {
		ips = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	}
	return c.Issue(pki.Grant{Role: pki.RoleAgent, ID: id, IPs: ips}, time.Now())
}

// Operator is a valid operator bundle with access a.
func (c *Cluster) Operator(id string, a pki.Access) *pki.Bundle {
	return c.Issue(pki.Grant{Role: pki.RoleOperator, ID: id, Access: a}, time.Now())
}

// ExpiredDirector is a director bundle that expired a year ago.
func (c *Cluster) ExpiredDirector(id string) *pki.Bundle {
	return c.Issue(pki.Grant{Role: pki.RoleDirector, ID: id, Validity: 365 * 24 * time.Hour}, time.Now().Add(-caAge))
}

// Trust is a bundle with this cluster's CA and no certificate.
func (c *Cluster) Trust() *pki.Bundle {
	c.t.Helper()
	b, err := pki.TrustBundle(c.CA.CertPEM())
	if err != nil {
		c.t.Fatal(err)
	}
	return b
}

// Save writes b under dir (at pki.DataDirFiles) and returns the files.
func Save(t testing.TB, dir string, b *pki.Bundle) pki.Files {
	t.Helper()
	f := pki.DataDirFiles(dir)
	if err := b.Save(f); err != nil {
		t.Fatal(err)
	}
	return f
}
