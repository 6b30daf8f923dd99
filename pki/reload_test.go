package pki_test

import (
	"context"
	"crypto"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/pki"
	"github.com/raftlvs/raftlvs/pki/pkitest"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestReloadServesTheNewCertificateWithoutARestart(t *testing.T) {
	c := pkitest.NewCluster(t, "c0ffee")
	first, second := c.Director("d1"), c.Director("d1")
	files := pkitest.Save(t, t.TempDir(), first)
	r, err := pki.NewReloader(files, pki.ReloaderOptions{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	var heard []*pki.Bundle
	r.Subscribe(func(b *pki.Bundle) { heard = append(heard, b) })
	server := pki.ServerConfig(r, pki.Require(pki.RoleDirector))
	client := pki.ClientConfig(c.Director("d2"), pki.Require(pki.RoleDirector))

	serial := func() string {
		res := handshake(t, server, client)
		if res.clientErr != nil || res.serverErr != nil {
			t.Fatalf("handshake: %v / %v", res.clientErr, res.serverErr)
		}
		return res.clientCS.PeerCertificates[0].SerialNumber.String()
	}
	if got := serial(); got != first.Leaf().SerialNumber.String() {
		t.Fatalf("served %s, want the first certificate", got)
	}
	changed, err := r.Reload()
	if err != nil || changed || len(heard) != 0 {
		t.Fatalf("reload of unchanged files: changed=%v err=%v, %d notifications", changed, err, len(heard))
	}

	pkitest.Save(t, t.TempDir(), second) // elsewhere first, to copy over the live files
	if err := second.Save(files); err != nil {
		t.Fatal(err)
	}
	changed, err = r.Reload()
	if err != nil || !changed {
		t.Fatalf("reload: changed=%v err=%v", changed, err)
	}
	if len(heard) != 1 || heard[0] != r.Current() {
		t.Fatalf("subscribers heard %d changes", len(heard))
	}
	if got := serial(); got != second.Leaf().SerialNumber.String() {
		t.Errorf("after reload served %s, want the second certificate %s", got, second.Leaf().SerialNumber)
	}
}

func TestAFailedReloadKeepsTheMaterialInUse(t *testing.T) {
	c := pkitest.NewCluster(t, "c0ffee")
	first := c.Director("d1")
	files := pkitest.Save(t, t.TempDir(), first)
	r, err := pki.NewReloader(files, pki.ReloaderOptions{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	notified := false
	r.Subscribe(func(*pki.Bundle) { notified = true })

	// A new certificate next to the old key: the pair does not match.
	next := c.Director("d1")
	if err := os.WriteFile(files.Cert, pki.EncodeCerts(next.Leaf(), c.CA.Cert), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = r.Reload()
	wantIs(t, "certificate without its key", err, pki.ErrKeyMismatch)
	if !strings.Contains(err.Error(), files.Cert) {
		t.Errorf("the error does not name the files: %v", err)
	}
	// An expired certificate.
	if err := c.ExpiredDirector("d1").Save(files); err != nil {
		t.Fatal(err)
	}
	_, err = r.Reload()
	wantIs(t, "expired", err, pki.ErrCertExpired)
	// A key others can read.
	if err := next.Save(files); err != nil {
		t.Fatal(err)
	}
	os.Chmod(files.Key, 0o604)
	_, err = r.Reload()
	wantIs(t, "world-readable key", err, pki.ErrKeyPermissions)

	if r.Current().Leaf().SerialNumber.Cmp(first.Leaf().SerialNumber) != 0 || notified {
		t.Error("a failed reload replaced the material in use")
	}
	_, err = pki.NewReloader(files, pki.ReloaderOptions{Logger: quiet()})
	wantIs(t, "NewReloader with a world-readable key", err, pki.ErrKeyPermissions)
}

// recorder is a slog handler that passes error records to a channel.
type recorder struct{ errs chan string }

func (h recorder) Enabled(context.Context, slog.Level) bool { return true }
func (h recorder) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.errs <- r.Message
	}
	return nil
}
func (h recorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h recorder) WithGroup(string) slog.Handler      { return h }

func TestRunPicksUpChangedFilesEvenWhenTheKeyLandsAfterTheCertificate(t *testing.T) {
	c := pkitest.NewCluster(t, "c0ffee")
	first, second := c.Director("d1"), c.Director("d1")
	files := pkitest.Save(t, t.TempDir(), first)
	logged := recorder{errs: make(chan string, 16)}
	r, err := pki.NewReloader(files, pki.ReloaderOptions{Logger: slog.New(logged), Interval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	changes := make(chan *pki.Bundle, 4)
	r.Subscribe(func(b *pki.Bundle) { changes <- b })
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); r.Run(ctx) }()
	defer func() { cancel(); wg.Wait() }()

	// A renewal tool that writes the certificate first: one failed load, logged.
	if err := os.WriteFile(files.Cert, pki.EncodeCerts(second.Leaf(), c.CA.Cert), 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case msg := <-logged.errs:
		if !strings.Contains(msg, "not reloaded") {
			t.Errorf("logged %q", msg)
		}
	case b := <-changes:
		t.Fatalf("a certificate without its key was loaded: %s", b.Identity)
	case <-time.After(bound):
		t.Fatal("the changed certificate file was not noticed")
	}
	// Then the key: the next poll loads the pair.
	keyPEM, err := pki.EncodeKey(second.Cert.PrivateKey.(crypto.Signer))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(files.Key, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-changes:
		if b.Leaf().SerialNumber.Cmp(second.Leaf().SerialNumber) != 0 {
			t.Errorf("loaded serial %s, want %s", b.Leaf().SerialNumber, second.Leaf().SerialNumber)
		}
	case <-time.After(bound):
		t.Fatal("the pair was not loaded once the key was written")
	}
	if r.Current().Leaf().SerialNumber.Cmp(second.Leaf().SerialNumber) != 0 {
		t.Error("Current is not the new certificate")
	}
}
