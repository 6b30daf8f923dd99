package pki_test

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"os"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/pki"
	"github.com/raftlvs/raftlvs/pki/pkitest"
)

func TestBundlesServeTheirChainWithTheCALastAndSurviveFiles(t *testing.T) {
	c := pkitest.NewCluster(t, "c0ffee")
	b := c.Director("d1")
	if n := len(b.Cert.Certificate); n != 2 || !bytes.Equal(b.Cert.Certificate[1], c.CA.Cert.Raw) {
		t.Fatalf("served chain of %d certificates; want the leaf then the CA (joiners pin it there)", n)
	}
	files := pkitest.Save(t, t.TempDir(), b)
	if fi, err := os.Stat(files.Key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	back, err := pki.LoadBundle(files)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Leaf().Equal(b.Leaf()) || back.Identity.ID != "d1" || len(back.Cert.Certificate) != 2 {
		t.Errorf("loaded %+v", back.Identity)
	}
}

func TestParseBundleRefusesMaterialThatDoesNotHangTogether(t *testing.T) {
	c := pkitest.NewCluster(t, "c0ffee")
	other := pkitest.NewCluster(t, "c0ffee")
	d1, d2 := c.Director("d1"), c.Director("d2")
	keyOf := func(b *pki.Bundle) []byte {
		k, err := pki.EncodeKey(b.Cert.PrivateKey.(crypto.Signer))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	// A certificate an operator's PKI made without a raftlvs URI SAN.
	key, _ := pki.GenerateKey()
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "lb1.example"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"lb1.example"},
	}, c.CA.Cert, key.Public(), c.CA.Key)
	if err != nil {
		t.Fatal(err)
	}
	bare, _ := x509.ParseCertificate(der)
	bareKey, _ := pki.EncodeKey(key)

	for _, tc := range []struct {
		name           string
		cert, key, cas []byte
		want           error
	}{
		{"the key of another certificate", pki.EncodeCerts(d1.Leaf()), keyOf(d2), c.CA.CertPEM(), pki.ErrKeyMismatch},
		{"a CA file of another CA", pki.EncodeCerts(d1.Leaf()), keyOf(d1), other.CA.CertPEM(), pki.ErrUnknownCA},
		{"a leaf in the CA file", pki.EncodeCerts(d1.Leaf()), keyOf(d1), pki.EncodeCerts(d2.Leaf()), pki.ErrNotCA},
		{"no raftlvs identity", pki.EncodeCerts(bare), bareKey, c.CA.CertPEM(), pki.ErrNoIdentity},
		{"a key where the certificate goes", keyOf(d1), keyOf(d1), c.CA.CertPEM(), pki.ErrMalformed},
		{"a chain out of order", pki.EncodeCerts(d1.Leaf(), d2.Leaf()), keyOf(d1), c.CA.CertPEM(), pki.ErrBadChain},
	} {
		_, err := pki.ParseBundle(tc.cert, tc.key, tc.cas)
		wantIs(t, tc.name, err, tc.want)
	}
}
