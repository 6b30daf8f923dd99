package healthd

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// selfSigned makes a certificate for rs.example and both loopback addresses, signed by
// itself, and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "rs.example"},
		DNSNames:              []string{"rs.example"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
}

func TestHTTPSCheckVerifiesOnlyWhenAsked(t *testing.T) {
	cert, roots := selfSigned(t)
	trusting := CheckerConfig{TLSRoots: roots}
	tests := []struct {
		name    string
		edit    func(*fsm.HealthCheck)
		cfg     CheckerConfig
		up      bool
		reason  string
		wantSNI string
	}{
		{"verify off accepts a self-signed certificate", nil, CheckerConfig{}, true, "HTTP 200", ""},
		{"verify on refuses a certificate the roots do not know", func(c *fsm.HealthCheck) { c.TLSVerify = true }, CheckerConfig{}, false, "TLS: ", ""},
		{"verify on accepts a trusted certificate for the address probed", func(c *fsm.HealthCheck) { c.TLSVerify = true }, trusting, true, "HTTP 200", ""},
		{"verify on accepts a trusted certificate for the SNI sent", func(c *fsm.HealthCheck) { c.TLSVerify, c.SNI = true, "rs.example" }, trusting, true, "HTTP 200", "rs.example"},
		{"verify on refuses a certificate for another name", func(c *fsm.HealthCheck) { c.TLSVerify, c.SNI = true, "other.example" }, trusting, false, "TLS: ", "other.example"},
		{"the SNI defaults to the Host header's name", func(c *fsm.HealthCheck) { c.TLSVerify, c.Host = true, "rs.example:8443" }, trusting, true, "HTTP 200", "rs.example"},
		{"verify off still sends the SNI", func(c *fsm.HealthCheck) { c.SNI = "other.example" }, CheckerConfig{}, true, "HTTP 200", "other.example"},
	}
	families(t, func(t *testing.T, lo netip.Addr) {
		sni := make(chan string, 1)
		to, seen := webServer(t, lo, func(s *httptest.Server) {
			s.TLS = &tls.Config{
				Certificates: []tls.Certificate{cert},
				GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
					sni <- h.ServerName
					return nil, nil
				},
			}
			s.StartTLS()
		})
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := run(t, spec(t, fsm.CheckHTTPS, generous, tt.edit), tt.cfg, to)
				if tt.up {
					wantUp(t, r, tt.reason)
					<-seen
				} else {
					wantDown(t, r, ErrTLS, tt.reason)
				}
				if got := <-sni; got != tt.wantSNI {
					t.Errorf("server saw SNI %q, want %q", got, tt.wantSNI)
				}
			})
		}
	})
}

func TestHTTPSCheckOfAPlainHTTPServerIsATLSFailure(t *testing.T) {
	to, _ := webServer(t, lo4, nil)
	wantDown(t, run(t, spec(t, fsm.CheckHTTPS, generous, nil), CheckerConfig{}, to), ErrTLS, "TLS: ")
}
