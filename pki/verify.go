package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Policy is who may be on the other end of a connection.
type Policy struct {
	// Roles the peer may have; none means any role.
	Roles []Role
	// ID, if set, is the only node id accepted (the join proof).
	ID string
	// Cluster, if set, is the cluster the peer must belong to; if empty, the cluster of
	// the verifier's own certificate, if it has one. The CA already separates clusters;
	// this matters when an operator's PKI signs for several.
	Cluster string
	// Now is the clock for validity checks; nil is time.Now.
	Now func() time.Time
	// Revoked, if set, refuses certificates it reports as revoked (by serial, say, from
	// a list in the replicated state: a removed director's certificate).
	Revoked func(*x509.Certificate) bool
}

// Require is the policy that accepts peers with one of roles (any role if none),
// the `RequirePeer(role...)` of the raft transport and the API.
func Require(roles ...Role) Policy { return Policy{Roles: roles} }

// WithID narrows p to the node id id.
func (p Policy) WithID(id string) Policy { p.ID = id; return p }

func (p Policy) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// VerifyPeer verifies a peer's chain (leaf first, as TLS presents it) against the
// source's CAs, for usage (x509.ExtKeyUsageClientAuth for a client, ServerAuth for a
// server), then checks p. It returns the peer's identity, or an error that wraps the
// first reason for refusal (ErrNoCertificate, ErrCertExpired, ErrCertNotYetValid,
// ErrUnknownCA, ErrBadChain, ErrNoIdentity, ErrWrongCluster, ErrWrongRole, ErrWrongID,
// ErrWrongUsage, ErrCertRevoked).
func VerifyPeer(src Source, p Policy, chain []*x509.Certificate, usage x509.ExtKeyUsage) (Identity, error) {
	if len(chain) == 0 {
		return Identity{}, fmt.Errorf("%w: the peer presented no certificate; want %s", ErrNoCertificate, p.want())
	}
	b := src.Current()
	if b == nil || b.Roots == nil {
		// Never fall back to the system roots.
		return Identity{}, fmt.Errorf("%w: no cluster CA loaded to verify against", ErrUnknownCA)
	}
	leaf := chain[0]
	name := describe(leaf)
	now := p.now()
	if now.Before(leaf.NotBefore) {
		return Identity{}, fmt.Errorf("%w: %s is valid from %s, and this node's clock says %s (clock skew?)",
			ErrCertNotYetValid, name, leaf.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if now.After(leaf.NotAfter) {
		return Identity{}, fmt.Errorf("%w: %s expired at %s", ErrCertExpired, name, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	// Any usage here; the role decides the usage below, with a clearer error.
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots: b.Roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return Identity{}, classifyVerifyError(name, b, err)
	}
	id, err := IdentityOf(leaf)
	if err != nil {
		return Identity{}, err
	}
	cluster := p.Cluster
	if cluster == "" && b.Leaf() != nil {
		cluster = b.Identity.Cluster
	}
	if cluster != "" && id.Cluster != cluster {
		return Identity{}, fmt.Errorf("%w: %s is of cluster %s, not %s", ErrWrongCluster, id, id.Cluster, cluster)
	}
	if len(p.Roles) > 0 && !slices.Contains(p.Roles, id.Role) {
		return Identity{}, fmt.Errorf("%w: the peer is %s; only %s may connect here", ErrWrongRole, id, p.want())
	}
	if p.ID != "" && id.ID != p.ID {
		return Identity{}, fmt.Errorf("%w: the certificate is %s's; want %s", ErrWrongID, id, p.ID)
	}
	if !hasUsage(leaf, usage) {
		return Identity{}, fmt.Errorf("%w: %s is not valid for %s", ErrWrongUsage, id, usageName(usage))
	}
	if p.Revoked != nil && p.Revoked(leaf) {
		return Identity{}, fmt.Errorf("%w: %s (serial %x)", ErrCertRevoked, id, leaf.SerialNumber)
	}
	return id, nil
}

// VerifyConnection is p as a tls.Config.VerifyConnection: usage is ServerAuth on a
// client (verifying its server) and ClientAuth on a server. With optional set, a client
// without a certificate passes (it authenticates with a token), but a certificate it
// does present must pass p.
func (p Policy) VerifyConnection(src Source, usage x509.ExtKeyUsage, optional bool) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if optional && len(cs.PeerCertificates) == 0 {
			return nil
		}
		_, err := VerifyPeer(src, p, cs.PeerCertificates, usage)
		return err
	}
}

// PeerIdentity is the identity of a connection's peer certificate, if it presented one.
// Only for connections made with this package's tls.Configs, which verified it.
func PeerIdentity(cs *tls.ConnectionState) (Identity, bool) {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return Identity{}, false
	}
	id, err := IdentityOf(cs.PeerCertificates[0])
	return id, err == nil
}

func (p Policy) want() string {
	var s []string
	for _, r := range p.Roles {
		s = append(s, string(r))
	}
	w := "a certificate of this cluster"
	if len(s) > 0 {
		w = "a " + strings.Join(s, " or ") + " certificate"
	}
	if p.ID != "" {
		w += " for " + p.ID
	}
	return w
}

func classifyVerifyError(name string, b *Bundle, err error) error {
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &unknown):
		return fmt.Errorf("%w: %s is not signed by this cluster's CA (%s)", ErrUnknownCA, name, fingerprints(b.CAs))
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return fmt.Errorf("%w: a CA in the chain of %s: %w", ErrCertExpired, name, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrBadChain, name, err)
}

func hasUsage(c *x509.Certificate, usage x509.ExtKeyUsage) bool {
	if len(c.ExtKeyUsage) == 0 && len(c.UnknownExtKeyUsage) == 0 {
		return true // no EKU extension: any usage (RFC 5280 §4.2.1.12)
	}
	return slices.Contains(c.ExtKeyUsage, usage) || slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageAny)
}

func usageName(u x509.ExtKeyUsage) string {
	switch u {
	case x509.ExtKeyUsageServerAuth:
		return "TLS server authentication"
	case x509.ExtKeyUsageClientAuth:
		return "TLS client authentication"
	}
	return fmt.Sprintf("extended key usage %d", u)
}

// describe names a certificate in an error: its raftlvs identity if it has one
// (unverified: for messages only), else its subject.
func describe(c *x509.Certificate) string {
	if id, err := IdentityOf(c); err == nil {
		return fmt.Sprintf("certificate %q (%s)", c.Subject.CommonName, id)
	}
	return fmt.Sprintf("certificate %q", c.Subject.CommonName)
}
