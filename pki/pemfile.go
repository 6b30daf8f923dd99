package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// maxPEMFile bounds what is read from a certificate or key file: a chain is a few
// kilobytes, and a reload must not read whatever a wrong path points at.
const maxPEMFile = 1 << 20

// readFile reads a PEM file of at most maxPEMFile bytes.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPEMFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxPEMFile {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrMalformed, path, maxPEMFile)
	}
	return b, nil
}

// readKeyFile reads a private key file, refusing one that others can read: such a key
// must be considered leaked, and silently using it would hide that.
func readKeyFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if perm := fi.Mode().Perm(); perm&0o007 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o; run chmod 600 %s (and consider the key leaked if others could read it)", ErrKeyPermissions, path, perm, path)
	}
	return readFile(path)
}

// CheckPrivateDir refuses a directory others can enter: a data dir that holds keys, or a
// Raft state with the CA key in it (raft writes its snapshot files 0644, in 0755
// directories, and relies on the data dir's mode).
func CheckPrivateDir(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if perm := fi.Mode().Perm(); perm&0o007 != 0 {
		return fmt.Errorf("%w: directory %s has mode %04o; run chmod 700 %s", ErrKeyPermissions, path, perm, path)
	}
	return nil
}

// writeFileAtomic writes data to path through a temporary file in the same directory
// and a rename, so a reader (the Reloader, another process) never sees half a file. A
// missing directory is made 0700: it holds keys.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// CreateTemp makes the file 0600; Chmod sets the wanted mode before any byte lands.
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	ok = true
	return nil
}

// EncodeCerts is the PEM encoding of certificates, in order.
func EncodeCerts(certs ...*x509.Certificate) []byte {
	var buf bytes.Buffer
	for _, c := range certs {
		pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}) // writes to a buffer cannot fail
	}
	return buf.Bytes()
}

// EncodeKey is the PKCS #8 PEM encoding of a private key.
func EncodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("%w: encode private key: %w", ErrMalformed, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseCerts reads every CERTIFICATE block of a PEM text, in order; it fails if there is
// none, or if anything but certificates is there.
func ParseCerts(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%w: found a %q PEM block where certificates were expected", ErrMalformed, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		certs = append(certs, c)
	}
	if len(bytes.TrimSpace(data)) > 0 && len(certs) == 0 {
		return nil, fmt.Errorf("%w: not PEM", ErrMalformed)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: no CERTIFICATE PEM block", ErrMalformed)
	}
	return certs, nil
}

// ParseKey reads one private key PEM block: PKCS #8 ("PRIVATE KEY", what this package
// writes), SEC 1 ("EC PRIVATE KEY") or PKCS #1 ("RSA PRIVATE KEY"), as operators' own
// PKI tools write them.
func ParseKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: no private key PEM block", ErrMalformed)
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("%w: PEM block %q is not a private key", ErrMalformed, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	switch k := key.(type) {
	case *ecdsa.PrivateKey, ed25519.PrivateKey:
		return k.(crypto.Signer), nil
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("%w: RSA key of %d bits; want at least 2048", ErrMalformed, k.N.BitLen())
		}
		return k, nil
	}
	return nil, fmt.Errorf("%w: unsupported private key type %T", ErrMalformed, key)
}

// samePublicKey reports whether a certificate is for the key's public half.
func samePublicKey(cert *x509.Certificate, key crypto.Signer) bool {
	pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(key.Public())
}
