package pki

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// The tls.Configs below verify peers themselves, in VerifyConnection, against the
// Source's current CAs:
//   - a reload of the CA file applies to the next handshake without rebuilding any
//     config (an http.Transport keeps its TLSClientConfig for ever);
//   - servers are checked by role in the URI SAN rather than by host name, since Raft
//     addresses are ip:port;
//   - both sides refuse with this package's errors (errors.Is-able) rather than the
//     standard library's.
// VerifyConnection runs on every handshake, resumed ones included, on both sides.

// ServerConfig is for a server every client of which has a certificate (the Raft
// transport): TLS ≥ 1.2, the source's current certificate, and each client's
// certificate verified and checked against clients.
func ServerConfig(src Source, clients Policy) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: serverCertificate(src),
		// Requested, not required by crypto/tls: VerifyConnection refuses a missing
		// certificate with ErrNoCertificate, which says more than crypto/tls's error.
		ClientAuth:       tls.RequestClientCert,
		VerifyConnection: clients.VerifyConnection(src, x509.ExtKeyUsageClientAuth, false),
	}
}

// APIServerConfig is for the HTTP API: as ServerConfig, except that a client may come
// without a certificate and authenticate with a bearer token instead (Authenticate). A
// certificate it does present must pass clients.
func APIServerConfig(src Source, clients Policy) *tls.Config {
	c := ServerConfig(src, clients)
	c.VerifyConnection = clients.VerifyConnection(src, x509.ExtKeyUsageClientAuth, true)
	return c
}

// ClientConfig is for dialling a server that must pass server (a director: the Raft
// transport, forwarding, agents and the CLI calling the API). It presents the source's
// current certificate, if it has one.
func ClientConfig(src Source, server Policy) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Not skipped: VerifyConnection verifies the chain against the current CAs and
		// the role instead of a host name (see above).
		InsecureSkipVerify:   true,
		GetClientCertificate: clientCertificate(src),
		VerifyConnection:     server.VerifyConnection(src, x509.ExtKeyUsageServerAuth, false),
	}
}

func serverCertificate(src Source) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		b := src.Current()
		if b == nil || b.Leaf() == nil {
			return nil, fmt.Errorf("%w: this node has no certificate to serve", ErrNoCertificate)
		}
		return &b.Cert, nil
	}
}

func clientCertificate(src Source) func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		b := src.Current()
		if b == nil || b.Leaf() == nil {
			return &tls.Certificate{}, nil // no certificate: the server decides
		}
		return &b.Cert, nil
	}
}

// PinnedClientConfig is for a joiner's first contact, when all it has is a token: it
// trusts a server only if the chain the server presents holds a CA with the token's
// fingerprint, the server's certificate chains to that CA, and it is a director's. Any
// other CA fails with ErrCAMismatch before the joiner sends its token. now is the clock
// (nil: time.Now). After the handshake, PinnedCA gives the CA to keep.
func PinnedClientConfig(fingerprint string, now func() time.Time) (*tls.Config, error) {
	if err := checkFingerprint(fingerprint); err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // verified against the pinned CA in VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := PinnedCA(&cs, fingerprint, now)
			return err
		},
	}, nil
}

// PinnedCA verifies a server's chain against the CA it contains whose fingerprint is
// fingerprint, and returns that CA. The server must be a director.
func PinnedCA(cs *tls.ConnectionState, fingerprint string, now func() time.Time) (*x509.Certificate, error) {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return nil, fmt.Errorf("%w: the server presented no certificate", ErrNoCertificate)
	}
	chain := cs.PeerCertificates
	var ca *x509.Certificate
	for _, c := range chain[1:] {
		if Fingerprint(c) == fingerprint {
			ca = c
		}
	}
	if ca == nil {
		return nil, fmt.Errorf("%w: the token pins %s, and the server presents %s: the cluster CA changed since the token was made, or this is not the cluster",
			ErrCAMismatch, fingerprint, fingerprints(chain[1:]))
	}
	if !ca.IsCA || !ca.BasicConstraintsValid {
		return nil, fmt.Errorf("%w: the pinned certificate %q is not a CA", ErrNotCA, ca.Subject.CommonName)
	}
	trust := &Bundle{Roots: x509.NewCertPool(), CAs: []*x509.Certificate{ca}}
	trust.Roots.AddCert(ca)
	if _, err := VerifyPeer(trust, Policy{Roles: []Role{RoleDirector}, Now: now}, chain, x509.ExtKeyUsageServerAuth); err != nil {
		return nil, err
	}
	return ca, nil
}

// CheckPin checks that ca is the CA a token pins: a joiner checks the CA the cluster
// sends back with its certificate before it saves it.
func CheckPin(ca *x509.Certificate, fingerprint string) error {
	if got := Fingerprint(ca); got != fingerprint {
		return fmt.Errorf("%w: the token pins %s, and the CA received is %s", ErrCAMismatch, fingerprint, got)
	}
	return nil
}

// checkFingerprint checks the "sha256:<64 hex digits>" form.
func checkFingerprint(fp string) error {
	hexPart, ok := strings.CutPrefix(fp, "sha256:")
	if b, err := hex.DecodeString(hexPart); !ok || err != nil || len(b) != 32 || strings.ToLower(hexPart) != hexPart {
		return fmt.Errorf("%w: CA fingerprint %q: want sha256: and 64 lowercase hex digits", ErrMalformed, fp)
	}
	return nil
}
