package pki_test

import (
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/pki"
)

// TestBootstrapThenJoinWithAToken walks the whole life of a second director, as the
// daemon will: bootstrap makes the CA and its own certificate; an operator makes a
// token; the joiner pins the CA from the token, sends a request for a key that never
// leaves it, and gets a certificate with the role the token carries.
func TestBootstrapThenJoinWithAToken(t *testing.T) {
	now := time.Now()
	leaderDir, joinerDir := t.TempDir(), t.TempDir()

	// Bootstrap (director d1).
	ca, err := pki.NewCA("c0ffee", now)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Save(pki.DataDirCAFiles(leaderDir)); err != nil {
		t.Fatal(err)
	}
	key, _ := pki.GenerateKey()
	own, err := ca.Issue(key.Public(), pki.Grant{Role: pki.RoleDirector, ID: "d1", IPs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}, now)
	if err != nil {
		t.Fatal(err)
	}
	b, err := pki.NewBundle(own, key, ca.Cert)
	if err != nil {
		t.Fatal(err)
	}
	files := pki.DataDirFiles(leaderDir)
	if err := b.Save(files); err != nil {
		t.Fatal(err)
	}
	leader, err := pki.NewReloader(files, pki.ReloaderOptions{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(files.Key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("node key file: %v, %v", fi, err)
	}

	// raftlvs token create --role director.
	record, cred, err := pki.NewToken(pki.TokenSpec{Role: pki.RoleDirector, TTL: pki.DefaultTokenTTL}, ca.Fingerprint(), now)
	if err != nil {
		t.Fatal(err)
	}
	tokens := map[string]pki.Token{record.ID: record}
	printed := cred.Encode()

	// The joiner: parse the token, make a key and a request, reach the cluster pinned.
	presented, err := pki.ParseCredential(printed)
	if err != nil {
		t.Fatal(err)
	}
	joinerKey, _ := pki.GenerateKey()
	csrPEM, err := pki.NewCSR(joinerKey, "d2")
	if err != nil {
		t.Fatal(err)
	}
	pinned, err := pki.PinnedClientConfig(presented.CAFingerprint, nil)
	if err != nil {
		t.Fatal(err)
	}
	res := handshake(t, pki.APIServerConfig(leader, pki.Require()), pinned)
	if res.clientErr != nil {
		t.Fatalf("first contact: %v", res.clientErr)
	}

	// The leader's signing endpoint: the token decides the role; the source address
	// the connection came from is what an agent would be limited to.
	tok, err := pki.VerifyToken(presented, func(id string) (pki.Token, bool) { t, ok := tokens[id]; return t, ok }, now)
	if err != nil {
		t.Fatal(err)
	}
	g, err := tok.Grant("d2", []netip.Addr{netip.MustParseAddr("127.0.0.1")}, netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.ParseCSR(csrPEM)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := pki.LoadCA(pki.DataDirCAFiles(leaderDir))
	if err != nil {
		t.Fatal(err)
	}
	issued, err := signer.SignCSR(csr, g, now)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, caPEM := pki.EncodeCerts(issued), signer.CertPEM()

	// The joiner checks the CA it got against its token and keeps the lot.
	cas, err := pki.ParseCerts(caPEM)
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.CheckPin(cas[0], presented.CAFingerprint); err != nil {
		t.Fatal(err)
	}
	certs, _ := pki.ParseCerts(certPEM)
	mine, err := pki.NewBundle(certs[0], joinerKey, cas...)
	if err != nil {
		t.Fatal(err)
	}
	if mine.Identity.Role != pki.RoleDirector || mine.Identity.ID != "d2" || mine.Identity.Cluster != "c0ffee" {
		t.Fatalf("joiner identity %+v", mine.Identity)
	}
	if err := mine.Save(pki.DataDirFiles(joinerDir)); err != nil {
		t.Fatal(err)
	}
	joiner, err := pki.NewReloader(pki.DataDirFiles(joinerDir), pki.ReloaderOptions{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}

	// From now on the two are peers: each checks the other is a director.
	res = handshake(t, pki.ServerConfig(leader, pki.Require(pki.RoleDirector)), pki.ClientConfig(joiner, pki.Require(pki.RoleDirector)))
	if res.serverErr != nil || res.clientErr != nil {
		t.Fatalf("peers: %v / %v", res.serverErr, res.clientErr)
	}
	if id, _ := pki.PeerIdentity(&res.serverCS); id.ID != "d2" {
		t.Errorf("the leader sees %+v", id)
	}
}
