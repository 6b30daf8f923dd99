package realserver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/pki"
	"github.com/raftlvs/raftlvs/pki/enroll"
)

// Security is how an agent proves itself to the directors. The zero value is the secure
// default: the agent certificate under Dir, obtained once with Token.
type Security struct {
	// Insecure: plain HTTP to the directors, no certificate (--insecure; the directors
	// must run insecure too). The agent warns at start.
	Insecure bool
	// Files, if set, are the operator's own PKI (--tls-cert, --tls-key, --tls-ca).
	Files pki.Files
	// Dir holds the agent's material when Files is not set: tls/node.pem,
	// tls/node-key.pem and tls/ca.pem under it. "" is an "agent" directory beside
	// the state file.
	Dir string
	// Token is an agent join token (--token): without a certificate, the agent obtains
	// one for its address from a director it finds in the gossip pool.
	Token string
}

// secure returns the API clients the agent uses: mutual TLS with its agent certificate,
// obtained first if need be. The directors' API addresses come from the gossip pool.
func (d *Daemon) secure(cfg DaemonConfig, directors *PoolDirectors) (func(addrs ...string) *api.Client, error) {
	sec, log := cfg.Security, cfg.Agent.Logger
	if sec.Insecure {
		log.Warn("INSECURE: the agent talks to the directors without TLS (--insecure)")
		return nil, nil
	}
	files := sec.Files
	if files == (pki.Files{}) {
		dir := sec.Dir
		if dir == "" {
			dir = filepath.Join(filepath.Dir(cfg.Agent.StateFile), "agent")
		}
		files = pki.DataDirFiles(dir)
		if _, err := os.Stat(files.Cert); errors.Is(err, fs.ErrNotExist) {
			if sec.Token == "" {
				return nil, fmt.Errorf("no agent certificate at %s: make a token on a director (raftlvs token create --role agent) and start with --token, or give --tls-cert/--tls-key/--tls-ca: %w", files.Cert, ErrBadSpec)
			}
			_, err := enroll.Enroll(context.Background(), enroll.Request{
				Token: sec.Token, ID: cfg.Agent.ID, IPs: []netip.Addr{cfg.Agent.Addr.Unmap()},
				Directors: directors.apiAddrs, Files: files, Logger: log,
			})
			if err != nil {
				return nil, err
			}
		}
	}
	r, err := pki.NewReloader(files, pki.ReloaderOptions{Logger: log})
	if err != nil {
		return nil, err
	}
	id := r.Current().Identity
	if id.Role != pki.RoleAgent || id.ID != cfg.Agent.ID || !id.HasIP(cfg.Agent.Addr) {
		return nil, fmt.Errorf("%s is the certificate of %s for %v; this agent is %s at %s and needs an agent certificate for both: %w",
			files.Cert, id, id.IPs, cfg.Agent.ID, cfg.Agent.Addr, ErrBadSpec)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.close = append(d.close, cancel)
	go r.Run(ctx)
	tlsCfg := pki.ClientConfig(r, pki.Require(pki.RoleDirector))
	return func(addrs ...string) *api.Client { return api.NewTLSClient(tlsCfg, addrs...) }, nil
}
