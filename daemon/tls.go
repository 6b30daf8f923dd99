package daemon

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/cluster"
	"github.com/raftlvs/raftlvs/cluster/apiserver"
	"github.com/raftlvs/raftlvs/fsm"
	"github.com/raftlvs/raftlvs/pki"
	"github.com/raftlvs/raftlvs/pki/enroll"
)

// Security is how a director gets and keeps its TLS material. The zero value is the
// secure default: the files under the data dir (pki.DataDirFiles), made at bootstrap
// or obtained with a join token.
type Security struct {
	// Insecure runs with no TLS and no authentication at all: plain Raft, plain HTTP.
	// Only on purpose (--insecure); New logs a warning.
	Insecure bool
	// Files, if set, are the operator's own PKI (--tls-cert, --tls-key, --tls-ca): the
	// director's certificate must carry a director identity of this cluster. The
	// cluster then holds no CA key and signs nothing: join tokens do not work.
	Files pki.Files
	// CACert and CAKey, if set, are the signing CA a bootstrap installs (--ca-cert,
	// --ca-key: an intermediate of the operator's offline root, say) instead of one it
	// creates.
	CACert, CAKey string
	// Token is a join token (--token): a joiner without a certificate obtains one.
	Token string
	// ReloadInterval is how often the files are checked for change; 0 is pki's default.
	ReloadInterval time.Duration
}

// AdminFiles are where a bootstrap leaves an admin operator certificate for the CLI on
// the same host: tls/admin.pem and tls/admin-key.pem under the data dir (and ca.pem).
func AdminFiles(dataDir string) pki.Files {
	f := pki.DataDirFiles(dataDir)
	dir := filepath.Dir(f.Cert)
	return pki.Files{Cert: filepath.Join(dir, "admin.pem"), Key: filepath.Join(dir, "admin-key.pem"), CA: f.CA}
}

// openTLS makes sure this director has TLS material and returns its reloader; nil when
// insecure. The data dir must be private: it holds keys, and the Raft state holds the
// CA key.
func (d *Director) openTLS() (*pki.Reloader, error) {
	o := d.opts
	if o.Security.Insecure {
		d.log.Warn("INSECURE: running without TLS or authentication (--insecure): anyone who reaches the Raft or API port can join the cluster and change every rule")
		return nil, nil
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	if err := pki.CheckPrivateDir(o.DataDir); err != nil {
		return nil, fmt.Errorf("the data dir holds keys: %w", err)
	}
	files := o.Security.Files
	if files == (pki.Files{}) {
		files = pki.DataDirFiles(o.DataDir)
		if _, err := os.Stat(files.Cert); errors.Is(err, fs.ErrNotExist) {
			if err := d.obtainCertificate(files); err != nil {
				return nil, err
			}
		}
	}
	r, err := pki.NewReloader(files, pki.ReloaderOptions{Logger: d.log, Interval: o.Security.ReloadInterval})
	if err != nil {
		return nil, err
	}
	if id := r.Current().Identity; id.Role != pki.RoleDirector || id.ID != o.ID {
		return nil, badOption("Security", "%s is the certificate of %s; this director is %s and needs a director certificate for that id", files.Cert, id, o.ID)
	}
	if o.ClusterID != "" && r.Current().Identity.Cluster != o.ClusterID {
		return nil, badOption("ClusterID", "%q, and the certificate is of cluster %s", o.ClusterID, r.Current().Identity.Cluster)
	}
	d.opts.ClusterID = r.Current().Identity.Cluster
	return r, nil
}

// obtainCertificate makes the first TLS material of a director: at bootstrap, the
// cluster CA and its own certificate (and an admin certificate for the CLI); with a
// join token, a certificate from the cluster.
func (d *Director) obtainCertificate(files pki.Files) error {
	o := d.opts
	hasState := false
	if _, err := os.Stat(filepath.Join(o.DataDir, "raft.db")); err == nil {
		hasState = true
	}
	switch {
	case o.Security.Token != "":
		addrs := o.Join
		_, err := enroll.Enroll(context.Background(), enroll.Request{
			Token: o.Security.Token, ID: o.ID, IPs: d.ownIPs(), Directors: func() []string { return addrs },
			Files: files, Logger: d.log,
		})
		return err
	case o.Bootstrap && !hasState:
		return d.bootstrapPKI(files)
	case o.Bootstrap:
		return badOption("Security", "%s holds Raft state but no TLS material (%s): a cluster made with --insecure stays insecure, or give --tls-cert/--tls-key/--tls-ca", o.DataDir, files.Cert)
	case len(o.Join) > 0:
		return badOption("Security", "a director joins with a token: raftlvs token create --role director (on a director), then --token")
	}
	return badOption("Security", "no TLS material in %s: bootstrap a cluster (--bootstrap), join one with --token, or give --tls-cert/--tls-key/--tls-ca", filepath.Dir(files.Cert))
}

// bootstrapPKI creates (or loads, with --ca-cert/--ca-key) the cluster CA, keeps it in
// the data dir (key 0600), and issues this director's certificate and an admin
// operator certificate with it. The leader installs the CA in the replicated state on
// its first term (trustDuty), so that every later leader can sign.
func (d *Director) bootstrapPKI(files pki.Files) error {
	o := d.opts
	if d.opts.ClusterID == "" {
		b := make([]byte, 8)
		rand.Read(b) // never fails (crypto/rand documents it)
		d.opts.ClusterID = hex.EncodeToString(b)
	}
	now := time.Now()
	var ca *pki.CA
	var err error
	if o.Security.CACert != "" || o.Security.CAKey != "" {
		if ca, err = pki.LoadCA(o.Security.CACert, o.Security.CAKey); err != nil {
			return err
		}
		if ca.ClusterID != "" && ca.ClusterID != d.opts.ClusterID && o.ClusterID != "" {
			return badOption("ClusterID", "%q, and the CA %s names cluster %s", o.ClusterID, o.Security.CACert, ca.ClusterID)
		}
		if ca.ClusterID != "" {
			d.opts.ClusterID = ca.ClusterID
		}
		ca.ClusterID = d.opts.ClusterID
	} else if ca, err = pki.NewCA(d.opts.ClusterID, now); err != nil {
		return err
	}
	if err := ca.Save(pki.DataDirCAFiles(o.DataDir)); err != nil {
		return err
	}
	key, err := pki.GenerateKey()
	if err != nil {
		return err
	}
	own, err := ca.Issue(key.Public(), pki.Grant{Role: pki.RoleDirector, ID: o.ID, IPs: d.ownIPs()}, now)
	if err != nil {
		return err
	}
	b, err := pki.NewBundle(own, key, ca.Cert)
	if err != nil {
		return err
	}
	if err := b.Save(files); err != nil {
		return err
	}
	akey, err := pki.GenerateKey()
	if err != nil {
		return err
	}
	admin, err := ca.Issue(akey.Public(), pki.Grant{Role: pki.RoleOperator, ID: "admin", Access: pki.AccessAdmin}, now)
	if err != nil {
		return err
	}
	ab, err := pki.NewBundle(admin, akey, ca.Cert)
	if err != nil {
		return err
	}
	if err := ab.Save(AdminFiles(o.DataDir)); err != nil {
		return err
	}
	d.log.Info("created the cluster CA and this director's certificate", "cluster_id", d.opts.ClusterID,
		"ca", ca.Fingerprint(), "dir", filepath.Dir(files.Cert), "admin_cert", AdminFiles(o.DataDir).Cert)
	return nil
}

// ownIPs are the addresses a director's certificate names: its Raft and API hosts.
func (d *Director) ownIPs() []netip.Addr {
	var out []netip.Addr
	for _, hp := range []string{d.opts.RaftAdvertise, d.opts.RaftBind, d.opts.APIAdvertise, d.opts.APIBind} {
		host, _, err := net.SplitHostPort(hp)
		if err != nil {
			continue
		}
		if a, err := netip.ParseAddr(host); err == nil && !a.IsUnspecified() && !containsAddr(out, a.Unmap()) {
			out = append(out, a.Unmap())
		}
	}
	return out
}

func containsAddr(list []netip.Addr, a netip.Addr) bool {
	for _, b := range list {
		if a == b {
			return true
		}
	}
	return false
}

// trustDuty installs what the cluster's trust needs while this director leads: the
// cluster CA in the replicated state (from the bootstrap's data dir) if it is not there
// yet, and the record of this director's own certificate, so that removing it revokes
// it. It retries until it succeeds or the term ends.
func (d *Director) trustDuty() cluster.Duty {
	return cluster.Duty{Name: "cluster trust", Run: func(ctx context.Context, started func()) error {
		started()
		if d.tls == nil {
			<-ctx.Done()
			return nil
		}
		for {
			err := d.installTrust(ctx)
			if err == nil {
				break
			}
			d.log.Warn("install the cluster CA and this director's certificate record; retrying", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(5 * time.Second):
			}
		}
		<-ctx.Done()
		return nil
	}}
}

func (d *Director) installTrust(ctx context.Context) error {
	var haveCA, haveCert bool
	leaf := d.tls.Current().Leaf()
	serial := leaf.SerialNumber.Text(16)
	d.node.View(func(s *fsm.State) {
		_, haveCA = s.CA()
		_, haveCert = s.Certificate(serial)
	})
	var cmds []fsm.Command
	if !haveCA {
		certFile, keyFile := pki.DataDirCAFiles(d.opts.DataDir)
		if ca, err := pki.LoadCA(certFile, keyFile); err == nil {
			keyPEM, err := ca.KeyPEM()
			if err != nil {
				return err
			}
			cmds = append(cmds, fsm.SetCA{CA: fsm.ClusterCA{CertPEM: string(ca.CertPEM()), KeyPEM: string(keyPEM)}})
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if !haveCert {
		id := d.tls.Current().Identity
		cmds = append(cmds, fsm.RecordCertificate{Certificate: fsm.Certificate{
			Serial: serial, Role: string(id.Role), ID: id.ID, IPs: id.IPs, NotAfter: leaf.NotAfter.UTC(),
		}})
	}
	if len(cmds) == 0 {
		return nil
	}
	if err := d.node.Apply(ctx, fsm.Batch{Commands: cmds}); err != nil {
		return err
	}
	if !haveCA && len(cmds) == 2 {
		d.log.Info("installed the cluster CA in the replicated state: any leader can now sign join requests")
	}
	return nil
}

// agentAdmission is the registrar's check of an agent's gossip metadata: with TLS, an
// agent registers real servers only at addresses one of its good certificates names,
// so a node that has the gossip key but no agent certificate registers nothing. Nil
// (admit all) when insecure.
func (d *Director) agentAdmission() func(id string, addr netip.Addr) error {
	if d.tls == nil {
		return nil
	}
	return func(id string, addr netip.Addr) error {
		var certified []netip.Addr
		d.node.View(func(s *fsm.State) { certified = s.CertifiedAddrs(fsm.RoleAgent, id, time.Now()) })
		if containsAddr(certified, addr.Unmap()) {
			return nil
		}
		if len(certified) == 0 {
			return fmt.Errorf("agent %s has no agent certificate of this cluster (raftlvs token create --role agent, then agent --token)", id)
		}
		return fmt.Errorf("agent %s announces %s, and its certificates name %v", id, addr, certified)
	}
}

// ReloadTLS reads the TLS files now (the daemon's SIGHUP); Raft streams restart with
// the new material if it changed.
func (d *Director) ReloadTLS() error {
	if d.tls == nil {
		return nil
	}
	_, err := d.tls.Reload()
	return err
}

// tlsSource is the node's TLS material for the cluster: nil (plain) when insecure.
func (d *Director) tlsSource() pki.Source {
	if d.tls == nil {
		return nil
	}
	return d.tls
}

// secureAPI turns on HTTPS and authentication on the API server and its listener.
func (d *Director) secureAPI(srv *apiserver.Server) {
	if d.tls == nil {
		return
	}
	srv.Secure(apiserver.Security{TLS: d.tls})
	cfg := srv.TLSConfig()
	cfg.NextProtos = []string{"http/1.1"}
	d.api = tls.NewListener(d.api, cfg)
}

// apiClient is a client of other directors' APIs with this director's certificate.
func (d *Director) apiClient(addrs ...string) *api.Client {
	if d.tls == nil {
		return api.NewClient(addrs...)
	}
	return api.NewTLSClient(pki.ClientConfig(d.tls, pki.Require(pki.RoleDirector)), addrs...)
}

// watchTLS reloads the TLS files when they change, until ctx ends, and restarts the
// Raft streams after each change: a TLS connection keeps the certificates it was opened
// with.
func (d *Director) watchTLS(ctx context.Context) {
	if d.tls == nil {
		return
	}
	cancel := d.tls.Subscribe(func(*pki.Bundle) { d.node.RestartStreams() })
	go func() {
		defer cancel()
		d.tls.Run(ctx)
	}()
}
