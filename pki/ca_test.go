package pki_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/pki"
)

func TestNewCAIsAP256RootThatSignsOnlyLeavesBackdated(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ca, err := pki.NewCA("c0ffee", now)
	if err != nil {
		t.Fatal(err)
	}
	c := ca.Cert
	key, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || key.Curve != elliptic.P256() {
		t.Errorf("CA key %T, want ECDSA P-256", c.PublicKey)
	}
	if !c.IsCA || c.MaxPathLen != 0 || !c.MaxPathLenZero {
		t.Errorf("IsCA=%v MaxPathLen=%d zero=%v: want a CA that cannot sign intermediates", c.IsCA, c.MaxPathLen, c.MaxPathLenZero)
	}
	if !c.NotBefore.Equal(now.Add(-pki.Backdate)) || !c.NotAfter.Equal(now.Add(pki.DefaultCAValidity)) {
		t.Errorf("validity %v..%v", c.NotBefore, c.NotAfter)
	}
	if ca.ClusterID != "c0ffee" {
		t.Errorf("cluster id %q", ca.ClusterID)
	}
	sum := sha256.Sum256(c.Raw)
	if got, want := ca.Fingerprint(), "sha256:"+hex.EncodeToString(sum[:]); got != want {
		t.Errorf("fingerprint %s, want %s", got, want)
	}
	if _, err := pki.NewCA("prod:eu", now); err == nil {
		t.Error("a cluster id that cannot be a URI host was accepted")
	}
}

func TestCASavedToFilesLoadsBackWithAPrivateKeyFile(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.NewCA("c0ffee", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	if err := ca.Save(certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	for file, mode := range map[string]os.FileMode{certFile: 0o644, keyFile: 0o600} {
		fi, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s has mode %04o, want %04o", file, fi.Mode().Perm(), mode)
		}
	}
	loaded, err := pki.LoadCA(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Fingerprint() != ca.Fingerprint() || loaded.ClusterID != "c0ffee" {
		t.Errorf("loaded CA %s of %q, want %s of c0ffee", loaded.Fingerprint(), loaded.ClusterID, ca.Fingerprint())
	}
	// A loaded CA signs as the original would.
	key, _ := pki.GenerateKey()
	if _, err := loaded.Issue(key.Public(), pki.Grant{Role: pki.RoleDirector, ID: "d1"}, time.Now()); err != nil {
		t.Fatalf("loaded CA cannot issue: %v", err)
	}
}

func TestLoadCARefusesAKeyFileOthersCanRead(t *testing.T) {
	dir := t.TempDir()
	ca, _ := pki.NewCA("c0ffee", time.Now())
	certFile, keyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	if err := ca.Save(certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := pki.LoadCA(certFile, keyFile)
	wantIs(t, "world-readable CA key", err, pki.ErrKeyPermissions)
	if !strings.Contains(err.Error(), keyFile) {
		t.Errorf("the error does not name the file: %v", err)
	}
	// Group-readable keys are an operator's choice (a raftlvs group, as ssl-cert does).
	if err := os.Chmod(keyFile, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.LoadCA(certFile, keyFile); err != nil {
		t.Errorf("a 0640 key was refused: %v", err)
	}
}

func TestParseCARefusesAKeyOfAnotherCAAndALeaf(t *testing.T) {
	a, _ := pki.NewCA("c1", time.Now())
	b, _ := pki.NewCA("c1", time.Now())
	bKey, _ := b.KeyPEM()
	_, err := pki.ParseCA(a.CertPEM(), bKey)
	wantIs(t, "CA with another CA's key", err, pki.ErrKeyMismatch)

	leafKey, _ := pki.GenerateKey()
	leaf, err := a.Issue(leafKey.Public(), pki.Grant{Role: pki.RoleDirector, ID: "d1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	leafKeyPEM, _ := pki.EncodeKey(leafKey)
	_, err = pki.ParseCA(pki.EncodeCerts(leaf), leafKeyPEM)
	wantIs(t, "a leaf as CA", err, pki.ErrNotCA)

	_, err = pki.ParseCA([]byte("not pem"), bKey)
	wantIs(t, "garbage", err, pki.ErrMalformed)
}

func TestCheckPrivateDirRefusesADirectoryOthersCanEnter(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := pki.CheckPrivateDir(dir); err != nil {
		t.Errorf("0700: %v", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	err := pki.CheckPrivateDir(dir)
	wantIs(t, "0755 data dir", err, pki.ErrKeyPermissions)
	if !strings.Contains(err.Error(), dir) {
		t.Errorf("the error does not name the directory: %v", err)
	}
}
