package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"time"
)

// DirectorServerName is the DNS SAN of every director certificate: a fixed name a client
// can verify when it reaches a director by IP (rqlite's -node-verify-server-name,
// Consul's server.<dc>.<domain>). raftlvs's own clients check the director role in the
// URI SAN instead; the name serves curl and other standard clients
// (curl --cacert ca.pem --connect-to director.raftlvs.internal:443:10.0.0.1:8443 …).
const DirectorServerName = "director.raftlvs.internal"

// Default certificate lifetimes. Directors and agents renew themselves (NeedsRenewal)
// over mTLS; an operator's certificate is a person's, so it is shorter.
const (
	DefaultDirectorValidity = 365 * 24 * time.Hour
	DefaultAgentValidity    = 365 * 24 * time.Hour
	DefaultOperatorValidity = 90 * 24 * time.Hour
)

// DefaultValidity is the lifetime of a role's certificates when a Grant names none.
func DefaultValidity(r Role) time.Duration {
	switch r {
	case RoleDirector:
		return DefaultDirectorValidity
	case RoleAgent:
		return DefaultAgentValidity
	}
	return DefaultOperatorValidity
}

// Grant is what the CA certifies about a key. The CA side decides it, from a token or
// the requester's current certificate; nothing in a CSR but its public key is used.
type Grant struct {
	Role   Role
	ID     string
	Access Access       // operators only
	IPs    []netip.Addr // directors (informative) and agents (the real servers they may register)
	// Validity is the lifetime from the issue time; 0 is DefaultValidity(Role). The
	// certificate never outlives the CA.
	Validity time.Duration
}

// NewCSR makes a certificate request for a key that stays on this node. It names only the
// id, as a hint for people reading it: the CA decides the certificate's role, id and
// addresses itself.
func NewCSR(key crypto.Signer, id string) ([]byte, error) {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: id},
	}, key)
	if err != nil {
		return nil, fmt.Errorf("create certificate request: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// ParseCSR reads a PEM certificate request and checks its signature, which proves the
// requester holds the private key.
func ParseCSR(data []byte) (*x509.CertificateRequest, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, fmt.Errorf("%w: no CERTIFICATE REQUEST PEM block", ErrMalformed)
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate request: %w", ErrMalformed, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: certificate request signature: %w", ErrMalformed, err)
	}
	return csr, nil
}

// SignCSR issues a certificate for the request's public key with what g says, and
// nothing the request says besides its key. The request must be signature-checked
// (ParseCSR does it; SignCSR checks again).
func (ca *CA) SignCSR(csr *x509.CertificateRequest, g Grant, now time.Time) (*x509.Certificate, error) {
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: certificate request signature: %w", ErrMalformed, err)
	}
	return ca.Issue(csr.PublicKey, g, now)
}

// Issue signs a certificate for pub: the bootstrap director's own, and SignCSR's.
func (ca *CA) Issue(pub crypto.PublicKey, g Grant, now time.Time) (*x509.Certificate, error) {
	if ca.ClusterID == "" {
		return nil, fmt.Errorf("%w: the CA has no cluster id", ErrBadGrant)
	}
	id := Identity{Cluster: ca.ClusterID, Role: g.Role, ID: g.ID, Access: g.Access, IPs: g.IPs}
	if err := id.validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadGrant, err)
	}
	if g.Role == RoleAgent && len(g.IPs) == 0 {
		return nil, fmt.Errorf("%w: an agent certificate must name its real-server addresses", ErrBadGrant)
	}
	if err := checkPublicKey(pub); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadGrant, err)
	}
	if now.Before(ca.Cert.NotBefore) || now.After(ca.Cert.NotAfter) {
		return nil, fmt.Errorf("%w: the CA is valid from %s to %s, and it is %s", ErrCAExpired,
			ca.Cert.NotBefore.UTC().Format(time.RFC3339), ca.Cert.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	validity := g.Validity
	if validity == 0 {
		validity = DefaultValidity(g.Role)
	}
	if validity < 0 {
		return nil, fmt.Errorf("%w: negative validity %v", ErrBadGrant, validity)
	}
	notBefore := now.Add(-Backdate)
	if notBefore.Before(ca.Cert.NotBefore) {
		notBefore = ca.Cert.NotBefore
	}
	notAfter := now.Add(validity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}

	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: g.ID, OrganizationalUnit: []string{string(g.Role)}, Organization: []string{"raftlvs " + ca.ClusterID}},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		URIs:         []*url.URL{id.URI()},
		// Only directors serve TLS: an agent or operator certificate cannot even pass a
		// standard server check, besides failing the role check.
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	if _, isRSA := pub.(*rsa.PublicKey); isRSA {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment // TLS 1.2 RSA key exchange
	}
	if g.Role == RoleDirector {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		tmpl.DNSNames = []string{DirectorServerName}
	}
	for _, ip := range g.IPs {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(ip.Unmap().AsSlice()))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("issue %s certificate for %s: %w", g.Role, g.ID, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("issue %s certificate for %s: %w", g.Role, g.ID, err)
	}
	return cert, nil
}

// checkPublicKey refuses keys too weak or too exotic to certify.
func checkPublicKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return fmt.Errorf("ECDSA key on %s; want P-256 or P-384", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("RSA key of %d bits; want at least 2048", k.N.BitLen())
		}
	default:
		return fmt.Errorf("unsupported public key type %T", pub)
	}
	return nil
}

// RenewalGrant is the grant for renewing the certificate of a verified identity: the
// same role, id, access and addresses, for a new lifetime. A node renews over mTLS with
// its current certificate, before it expires, and needs no token.
func RenewalGrant(id Identity, validity time.Duration) Grant {
	return Grant{Role: id.Role, ID: id.ID, Access: id.Access, IPs: id.IPs, Validity: validity}
}

// RenewAt is when a certificate should be renewed: two thirds into its lifetime (as
// cert-manager and Vault agents do), leaving a third of it to retry through outages.
func RenewAt(cert *x509.Certificate) time.Time {
	life := cert.NotAfter.Sub(cert.NotBefore)
	return cert.NotBefore.Add(life / 3 * 2)
}

// NeedsRenewal reports whether a certificate is due for renewal at now.
func NeedsRenewal(cert *x509.Certificate, now time.Time) bool { return !now.Before(RenewAt(cert)) }
