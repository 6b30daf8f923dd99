package fsm

import (
	"bytes"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	t0        = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	hashAB    = "sha256:" + strings.Repeat("ab", 32)
	agentIP   = netip.MustParseAddr("10.0.0.21")
	directorT = Token{ID: "dddddddd", Role: RoleDirector, Hash: hashAB, Created: t0, Expires: t0.Add(time.Hour), SingleUse: true}
)

func TestATokenIsUsedOnceAndRevokedAtItsFirstRevocation(t *testing.T) {
	s := NewState()
	mustExec(t, s, PutToken{Token: directorT})
	if err := s.Execute(PutToken{Token: directorT}); !errors.Is(err, ErrExists) {
		t.Fatalf("second put: %v, want ErrExists", err)
	}
	mustExec(t, s, RevokeToken{ID: directorT.ID, At: t0.Add(time.Minute), Used: true, UsedBy: "d2"})
	if err := s.Execute(RevokeToken{ID: directorT.ID, At: t0.Add(2 * time.Minute), Used: true, UsedBy: "d3"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("second use: %v, want ErrConflict", err)
	}
	mustExec(t, s, RevokeToken{ID: directorT.ID, At: t0.Add(3 * time.Minute)})
	mustExec(t, s, RevokeToken{ID: directorT.ID, At: t0.Add(4 * time.Minute)})
	got, _ := s.Token(directorT.ID)
	if got.UsedBy != "d2" || !got.Used.Equal(t0.Add(time.Minute)) || !got.Revoked.Equal(t0.Add(3*time.Minute)) {
		t.Errorf("token %+v", got)
	}
	mustExec(t, s, DeleteToken{ID: directorT.ID})
	if _, ok := s.Token(directorT.ID); ok {
		t.Error("deleted token still there")
	}
}

func TestTokenRecordsAreChecked(t *testing.T) {
	for name, tok := range map[string]Token{
		"short id":            {ID: "abc", Role: RoleAgent, Hash: hashAB, Created: t0},
		"unknown role":        {ID: "aaaaaaaa", Role: "root", Hash: hashAB, Created: t0},
		"operator, no access": {ID: "aaaaaaaa", Role: RoleOperator, Hash: hashAB, Created: t0},
		"agent with access":   {ID: "aaaaaaaa", Role: RoleAgent, Access: "admin", Hash: hashAB, Created: t0},
		"a secret, not hash":  {ID: "aaaaaaaa", Role: RoleAgent, Hash: "hunter2", Created: t0},
	} {
		if err := NewState().Execute(PutToken{Token: tok}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

func TestCertifiedAddrsAreThoseOfGoodCertificates(t *testing.T) {
	s := NewState()
	other := netip.MustParseAddr("10.0.0.99")
	mustExec(t, s, RecordCertificate{Certificate: Certificate{Serial: "0a", Role: RoleAgent, ID: "rs1", IPs: []netip.Addr{agentIP}, NotAfter: t0.Add(time.Hour)}})
	mustExec(t, s, RecordCertificate{Certificate: Certificate{Serial: "0b", Role: RoleAgent, ID: "rs1", IPs: []netip.Addr{other}, NotAfter: t0.Add(time.Hour)}})
	mustExec(t, s, RecordCertificate{Certificate: Certificate{Serial: "0c", Role: RoleAgent, ID: "rs1", IPs: []netip.Addr{netip.MustParseAddr("10.0.0.98")}, NotAfter: t0}})
	mustExec(t, s, RevokeCertificate{Serial: "0b", At: t0})
	mustExec(t, s, RevokeCertificate{Serial: "ff", At: t0}) // never recorded: an operator PKI's
	if got := s.CertifiedAddrs(RoleAgent, "rs1", t0.Add(time.Minute)); !slices.Equal(got, []netip.Addr{agentIP}) {
		t.Errorf("certified %v, want only %v (0b revoked, 0c expired)", got, agentIP)
	}
	if got := s.CertifiedAddrs(RoleDirector, "rs1", t0); len(got) != 0 {
		t.Errorf("a director rs1 has %v", got)
	}
	if !s.CertificateRevoked("ff") || s.CertificateRevoked("0a") {
		t.Error("revocations wrong")
	}
}

func TestSnapshotCarriesTheTrust(t *testing.T) {
	s := NewState()
	mustExec(t, s, PutToken{Token: directorT})
	mustExec(t, s, RevokeToken{ID: directorT.ID, At: t0, Used: true, UsedBy: "d2"})
	mustExec(t, s, SetCA{CA: ClusterCA{CertPEM: "-----BEGIN CERTIFICATE-----\nx\n", KeyPEM: "-----BEGIN PRIVATE KEY-----\ny\n"}})
	mustExec(t, s, RecordCertificate{Certificate: Certificate{Serial: "0a", Role: RoleAgent, ID: "rs1", IPs: []netip.Addr{agentIP}, NotAfter: t0}})
	mustExec(t, s, RevokeCertificate{Serial: "0a", At: t0})
	mustExec(t, s, RevokeCertificate{Serial: "ff", At: t0})
	var buf bytes.Buffer
	if err := s.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSnapshot(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(s) {
		t.Errorf("restored trust differs:\n%+v\n%+v", got.trust, s.trust)
	}
	if ca, _ := s.CA(); strings.Contains(ca.String(), "PRIVATE") {
		t.Error("ClusterCA.String shows the key")
	}
}

func mustExec(t *testing.T, s *State, c Command) {
	t.Helper()
	if err := s.Execute(c); err != nil {
		t.Fatalf("%T: %v", c, err)
	}
}
