package daemon

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/fsm"
	"github.com/raftlvs/raftlvs/pki"
)

// TestASecureClusterFromScratch runs real directors on loopback with the secure default:
// a bootstrap makes the CA, a joiner gets a certificate with a token, writes reach the
// leader through a follower, a bare listener cannot be joined, a certificate reload
// keeps leadership and writes, and a removed director's certificate is revoked.
func TestASecureClusterFromScratch(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	ctx := context.Background()
	d1 := startDirectorWith(t, "d1", key, "", Security{ReloadInterval: time.Hour})
	waitUntil(t, "d1 leads", 20*time.Second, d1.node().IsLeader)
	waitUntil(t, "the CA is in the replicated state", 20*time.Second, func() (ok bool) {
		d1.node().View(func(s *fsm.State) { _, ok = s.CA() })
		return ok
	})
	admin, err := pki.LoadBundle(AdminFiles(d1.d.opts.DataDir))
	if err != nil {
		t.Fatalf("the bootstrap's admin certificate: %v", err)
	}
	adminAt := func(addr string) *api.Client {
		return api.NewTLSClient(pki.ClientConfig(admin, pki.Require(pki.RoleDirector)), addr)
	}
	if _, err := api.NewClient(d1.d.APIAddr()).Status(ctx, false); err == nil {
		t.Error("plain HTTP to a secure director answered")
	}
	tok, err := adminAt(d1.d.APIAddr()).CreateToken(ctx, api.TokenRequest{Role: "director", TTL: "10m"})
	if err != nil {
		t.Fatal(err)
	}

	// A joiner without a token does not even start; one with it joins.
	if _, err := New(Options{ID: "d9", DataDir: filepath.Join(t.TempDir(), "d9"), RaftBind: "127.0.0.1:0", APIBind: "127.0.0.1:0",
		GossipBind: "127.0.0.1:0", GossipKey: key, Join: []string{d1.d.APIAddr()}, Witness: true}); !errors.Is(err, ErrBadOptions) {
		t.Errorf("a joiner without a token: %v, want an option error", err)
	}
	d2 := startDirectorWith(t, "d2", key, d1.d.APIAddr(), Security{Token: tok.Token})
	waitUntil(t, "d2 a voter that knows its leader", 30*time.Second, func() bool {
		st := d2.node().Status()
		return st.LeaderID == "d1" && len(st.Voters) == 2
	})
	if _, err := adminAt(d2.d.APIAddr()).AddService(ctx, fsm.Service{Name: "web", Protocol: fsm.TCP,
		VIP: netip.MustParseAddr("192.0.2.80"), Port: 80}); err != nil {
		t.Fatalf("a write through the follower: %v", err)
	}
	// The follower counted the write by its route, though the request it served was the
	// authenticated copy (the caller in its context).
	scrape := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: pki.ClientConfig(admin, pki.Require(pki.RoleDirector))}}
	resp, err := scrape.Get("https://" + d2.d.APIAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `raftlvs_api_requests_total{code="201",endpoint="POST /v1/services"} 1`; resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
		t.Errorf("d2's /metrics (%d) lacks %s", resp.StatusCode, want)
	}

	// A ghost: a bare TCP listener as a joiner's Raft address.
	ghost, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ghost.Close()
	go func() {
		for {
			c, err := ghost.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	err = adminAt(d1.d.APIAddr()).Join(ctx, fsm.Director{ID: "ghost", RaftAddr: ghost.Addr().String(), APIAddr: "127.0.0.1:1"})
	if !errors.Is(err, fsm.ErrInvalid) || !strings.Contains(err.Error(), "TLS") {
		t.Errorf("joining a bare listener: %v, want invalid, saying TLS", err)
	}
	if n := len(d1.node().Status().Voters); n != 2 {
		t.Errorf("%d voters after the ghost, want 2", n)
	}

	// A new certificate for d1, loaded without a restart: leadership and writes go on,
	// over restarted streams.
	ca, err := pki.LoadCA(pki.DataDirCAFiles(d1.d.opts.DataDir))
	if err != nil {
		t.Fatal(err)
	}
	nk, _ := pki.GenerateKey()
	nc, err := ca.Issue(nk.Public(), pki.Grant{Role: pki.RoleDirector, ID: "d1", IPs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	nb, _ := pki.NewBundle(nc, nk, ca.Cert)
	if err := nb.Save(pki.DataDirFiles(d1.d.opts.DataDir)); err != nil {
		t.Fatal(err)
	}
	if err := d1.d.ReloadTLS(); err != nil {
		t.Fatal(err)
	}
	if got := d1.d.tls.Current().Leaf().SerialNumber; got.Cmp(nc.SerialNumber) != 0 {
		t.Fatalf("d1 serves serial %x after the reload, want %x", got, nc.SerialNumber)
	}
	if _, err := adminAt(d2.d.APIAddr()).AddService(ctx, fsm.Service{Name: "dns", Protocol: fsm.UDP,
		VIP: netip.MustParseAddr("192.0.2.80"), Port: 53}); err != nil {
		t.Fatalf("a write after the reload: %v", err)
	}
	if !d1.node().IsLeader() {
		t.Error("d1 lost leadership over a certificate reload")
	}

	// d2 leaves: its certificate is revoked in the replicated state.
	serial := d2.d.tls.Current().Leaf().SerialNumber.Text(16)
	if err := adminAt(d1.d.APIAddr()).Leave(ctx, "d2"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "d2's certificate revoked", 10*time.Second, func() (r bool) {
		d1.node().View(func(s *fsm.State) { r = s.CertificateRevoked(serial) })
		return r
	})
}
