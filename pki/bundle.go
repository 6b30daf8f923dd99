package pki

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"slices"
)

// Bundle is a node's TLS material at one moment: its certificate chain and key, its
// identity, and the CAs it trusts. A Bundle is immutable; a reload makes a new one.
type Bundle struct {
	// Cert is the chain served to peers, leaf first and the issuing CA last (a joiner
	// that pins the CA by fingerprint finds it there), with the private key and the
	// parsed leaf. Empty in a trust-only bundle (TrustBundle).
	Cert     tls.Certificate
	Identity Identity
	// Roots are the trusted CAs: the cluster CA, plus the previous one during a CA
	// rotation.
	Roots *x509.CertPool
	CAs   []*x509.Certificate
}

// Source gives the current Bundle: a *Reloader, or a fixed *Bundle.
type Source interface{ Current() *Bundle }

// Current makes a fixed Bundle a Source.
func (b *Bundle) Current() *Bundle { return b }

// Leaf is the node's own parsed certificate, nil in a trust-only bundle.
func (b *Bundle) Leaf() *x509.Certificate { return b.Cert.Leaf }

// Files are where a node keeps its TLS material.
type Files struct {
	Cert string // the node's certificate chain, PEM
	Key  string // its private key, PEM, mode 0600
	CA   string // the CA certificates it trusts, PEM
}

// DataDirFiles are the conventional files under a data dir: tls/node.pem,
// tls/node-key.pem and tls/ca.pem.
func DataDirFiles(dataDir string) Files {
	dir := filepath.Join(dataDir, "tls")
	return Files{Cert: filepath.Join(dir, "node.pem"), Key: filepath.Join(dir, "node-key.pem"), CA: filepath.Join(dir, "ca.pem")}
}

// DataDirCAFiles are where a bootstrap keeps the signing CA under a data dir, apart from
// ca.pem (which lists every trusted CA, two during a CA rotation).
func DataDirCAFiles(dataDir string) (certFile, keyFile string) {
	dir := filepath.Join(dataDir, "tls")
	return filepath.Join(dir, "cluster-ca.pem"), filepath.Join(dir, "cluster-ca-key.pem")
}

// ParseBundle builds a Bundle from PEM: the node's chain (leaf first, then any
// intermediates), its key, and the trusted CAs. It checks that the key is the leaf's,
// that the chain's signatures lead to one of the CAs, and that the leaf carries a
// raftlvs identity. It does not check validity times: the Reloader does, with its
// clock, and a peer does on every handshake.
func ParseBundle(certPEM, keyPEM, caPEM []byte) (*Bundle, error) {
	b, err := TrustBundle(caPEM)
	if err != nil {
		return nil, err
	}
	chain, err := ParseCerts(certPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	key, err := ParseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	leaf := chain[0]
	if !samePublicKey(leaf, key) {
		return nil, fmt.Errorf("%w: the key is not the key of certificate %q", ErrKeyMismatch, leaf.Subject.CommonName)
	}
	root, err := chainsTo(chain, b.CAs)
	if err != nil {
		return nil, err
	}
	id, err := IdentityOf(leaf)
	if err != nil {
		return nil, err
	}
	b.Identity = id
	for _, c := range chain {
		b.Cert.Certificate = append(b.Cert.Certificate, c.Raw)
	}
	if !bytes.Equal(chain[len(chain)-1].Raw, root.Raw) {
		b.Cert.Certificate = append(b.Cert.Certificate, root.Raw)
	}
	b.Cert.PrivateKey = key
	b.Cert.Leaf = leaf
	return b, nil
}

// TrustBundle is a Bundle with CAs and no certificate of its own: a client that
// authenticates with a token (the CLI with --ca and RAFTLVS_TOKEN).
func TrustBundle(caPEM []byte) (*Bundle, error) {
	cas, err := ParseCerts(caPEM)
	if err != nil {
		return nil, fmt.Errorf("CA certificates: %w", err)
	}
	pool := x509.NewCertPool()
	for _, c := range cas {
		if !c.IsCA || !c.BasicConstraintsValid {
			return nil, fmt.Errorf("%w: %q in the CA file has no CA basic constraint", ErrNotCA, c.Subject.CommonName)
		}
		pool.AddCert(c)
	}
	return &Bundle{Roots: pool, CAs: cas}, nil
}

// LoadBundle reads a Bundle from files; the key file must not be readable by others.
func LoadBundle(f Files) (*Bundle, error) {
	certPEM, err := readFile(f.Cert)
	if err != nil {
		return nil, fmt.Errorf("load TLS material: %w", err)
	}
	keyPEM, err := readKeyFile(f.Key)
	if err != nil {
		return nil, fmt.Errorf("load TLS material: %w", err)
	}
	caPEM, err := readFile(f.CA)
	if err != nil {
		return nil, fmt.Errorf("load TLS material: %w", err)
	}
	b, err := ParseBundle(certPEM, keyPEM, caPEM)
	if err != nil {
		return nil, fmt.Errorf("load TLS material from %s, %s and %s: %w", f.Cert, f.Key, f.CA, err)
	}
	return b, nil
}

// NewBundle assembles a Bundle from a just-issued certificate, its key and the CA:
// the bootstrap director's own, or a joiner's once the cluster signed its request.
func NewBundle(cert *x509.Certificate, key crypto.Signer, cas ...*x509.Certificate) (*Bundle, error) {
	keyPEM, err := EncodeKey(key)
	if err != nil {
		return nil, err
	}
	return ParseBundle(EncodeCerts(cert), keyPEM, EncodeCerts(cas...))
}

// Save writes the bundle's chain, key (0600) and CAs, each atomically, the key first:
// a reloader that sees the new certificate finds its key already there.
func (b *Bundle) Save(f Files) error {
	if b.Cert.Leaf == nil {
		return fmt.Errorf("save TLS material: %w: a trust-only bundle has no certificate", ErrMalformed)
	}
	keyPEM, err := EncodeKey(b.Cert.PrivateKey.(crypto.Signer))
	if err != nil {
		return err
	}
	var chain bytes.Buffer
	for _, der := range b.Cert.Certificate {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("save TLS material: %w", err)
		}
		chain.Write(EncodeCerts(c))
	}
	if err := writeFileAtomic(f.Key, keyPEM, 0o600); err != nil {
		return err
	}
	if err := writeFileAtomic(f.CA, EncodeCerts(b.CAs...), 0o644); err != nil {
		return err
	}
	return writeFileAtomic(f.Cert, chain.Bytes(), 0o644)
}

// same reports whether two bundles hold the same certificates and CAs.
func (b *Bundle) same(o *Bundle) bool {
	if b == nil || o == nil {
		return b == o
	}
	eq := func(x, y []byte) bool { return bytes.Equal(x, y) }
	raws := func(cs []*x509.Certificate) [][]byte {
		out := make([][]byte, len(cs))
		for i, c := range cs {
			out[i] = c.Raw
		}
		return out
	}
	return slices.EqualFunc(b.Cert.Certificate, o.Cert.Certificate, eq) &&
		slices.EqualFunc(raws(b.CAs), raws(o.CAs), eq)
}

// chainsTo checks, by signatures only, that chain (leaf first) leads to one of cas, and
// returns that CA. Times are checked at handshakes, against the verifier's clock.
func chainsTo(chain []*x509.Certificate, cas []*x509.Certificate) (*x509.Certificate, error) {
	for i := 0; i+1 < len(chain); i++ {
		if err := chain[i].CheckSignatureFrom(chain[i+1]); err != nil {
			return nil, fmt.Errorf("%w: %q is not signed by the next certificate in its file, %q: %w",
				ErrBadChain, chain[i].Subject.CommonName, chain[i+1].Subject.CommonName, err)
		}
	}
	last := chain[len(chain)-1]
	for _, ca := range cas {
		if bytes.Equal(last.Raw, ca.Raw) || last.CheckSignatureFrom(ca) == nil {
			return ca, nil
		}
	}
	return nil, fmt.Errorf("%w: certificate %q is not signed by any CA of the CA file (%s)", ErrUnknownCA, last.Subject.CommonName, fingerprints(cas))
}

func fingerprints(cas []*x509.Certificate) string {
	var buf bytes.Buffer
	for i, c := range cas {
		if i > 0 {
			buf.WriteString(", ")
		}
		buf.WriteString(Fingerprint(c))
	}
	return buf.String()
}
