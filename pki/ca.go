package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"math/big"
	"net/url"
	"time"
)

const (
	// DefaultCAValidity: the cluster CA outlives every certificate it signs; rotating it
	// means re-issuing them all, so it is long.
	DefaultCAValidity = 10 * 365 * 24 * time.Hour
	// Backdate is how far before its issue time a certificate becomes valid. A node
	// whose clock is behind the signer's still accepts a certificate issued a moment ago
	// (vault#11150: a clock two hours fast made fresh certificates "not yet valid"
	// everywhere else and took the cluster down). An hour covers a VM resumed without
	// NTP; it costs nothing, since raftlvs never reasons about issue times.
	Backdate = time.Hour
)

// CA is a cluster certificate authority: its certificate and signing key.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// ClusterID is written into every certificate the CA signs. NewCA and a CA this
	// package created carry it in the certificate; an operator's own CA does not, so
	// the caller sets it.
	ClusterID string
}

// NewCA creates a self-signed cluster CA on an ECDSA P-256 key, valid for
// DefaultCAValidity from now (backdated by Backdate). P-256 rather than Ed25519: every
// TLS stack an operator may point at the API accepts it (browsers for a status page,
// older OpenSSL and Java, HSMs and cloud KMSs do not all take Ed25519 certificates), it
// is FIPS-approved, and Go's implementation is constant-time and fast.
func NewCA(clusterID string, now time.Time) (*CA, error) {
	if err := ValidClusterID(clusterID); err != nil {
		return nil, fmt.Errorf("new CA: %w", err)
	}
	key, err := GenerateKey()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "raftlvs CA " + clusterID, Organization: []string{"raftlvs"}},
		NotBefore:             now.Add(-Backdate),
		NotAfter:              now.Add(DefaultCAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		// The CA signs leaves only: a stolen leaf key can never mint certificates.
		MaxPathLenZero: true,
		URIs:           []*url.URL{{Scheme: URIScheme, Host: clusterID}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("new CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("new CA: %w", err)
	}
	return &CA{Cert: cert, Key: key, ClusterID: clusterID}, nil
}

// GenerateKey makes a node's private key (ECDSA P-256, as the CA's).
func GenerateKey() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return key, nil
}

// ParseCA reads a CA from its PEM certificate and key, checking that they match and that
// the certificate is a CA. The cluster id comes from the certificate's raftlvs URI SAN
// if it has one.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	certs, err := ParseCerts(certPEM)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	cert := certs[0]
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return nil, fmt.Errorf("%w: %q has no CA basic constraint", ErrNotCA, cert.Subject.CommonName)
	}
	key, err := ParseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	if !samePublicKey(cert, key) {
		return nil, fmt.Errorf("%w: the CA key is not the key of %q", ErrKeyMismatch, cert.Subject.CommonName)
	}
	ca := &CA{Cert: cert, Key: key}
	for _, u := range cert.URIs {
		if u.Scheme == URIScheme && (u.Path == "" || u.Path == "/") && ValidClusterID(u.Host) == nil {
			ca.ClusterID = u.Host
		}
	}
	return ca, nil
}

// LoadCA reads a CA from files (the bootstrap's data dir, or --ca-cert/--ca-key). The
// key file must not be readable by others (ErrKeyPermissions names it).
func LoadCA(certFile, keyFile string) (*CA, error) {
	certPEM, err := readFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("load CA: %w", err)
	}
	keyPEM, err := readKeyFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("load CA: %w", err)
	}
	ca, err := ParseCA(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load CA from %s and %s: %w", certFile, keyFile, err)
	}
	return ca, nil
}

// Save writes the CA certificate (0644) and key (0600), each atomically.
func (ca *CA) Save(certFile, keyFile string) error {
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		return err
	}
	if err := writeFileAtomic(keyFile, keyPEM, 0o600); err != nil {
		return fmt.Errorf("save CA key: %w", err)
	}
	if err := writeFileAtomic(certFile, ca.CertPEM(), 0o644); err != nil {
		return fmt.Errorf("save CA certificate: %w", err)
	}
	return nil
}

// CertPEM is the CA certificate in PEM: what every node trusts.
func (ca *CA) CertPEM() []byte { return EncodeCerts(ca.Cert) }

// KeyPEM is the CA key in PKCS #8 PEM. It is the cluster's most sensitive secret.
func (ca *CA) KeyPEM() ([]byte, error) { return EncodeKey(ca.Key) }

// Fingerprint is the CA certificate's fingerprint, as tokens pin it.
func (ca *CA) Fingerprint() string { return Fingerprint(ca.Cert) }

// Fingerprint is "sha256:" and the hex SHA-256 of a certificate's DER encoding.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// randomSerial is a 128-bit random serial number, as the CA/Browser Forum asks (at least
// 64 bits of randomness), so serials never repeat across leaders that sign.
func randomSerial() *big.Int {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	n, _ := rand.Int(rand.Reader, limit) // crypto/rand does not fail
	return n.Add(n, big.NewInt(1))       // serials are positive
}
