package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/daemon"
	"github.com/raftlvs/raftlvs/pki"
	"github.com/raftlvs/raftlvs/realserver"
)

// defaultDataDir is where a director keeps its data, and where the CLI looks for
// credentials when given none: a bootstrap's admin certificate, else the director's own.
const defaultDataDir = "/var/lib/raftlvs"

// credentialFlags are the operator commands' credentials, global flags.
func credentialFlags(root *cobra.Command) {
	f := root.PersistentFlags()
	f.String("token", os.Getenv("RAFTLVS_TOKEN"), "operator token, sent as Authorization: Bearer (env RAFTLVS_TOKEN)")
	f.String("cert", os.Getenv("RAFTLVS_CERT"), "client certificate, PEM (env RAFTLVS_CERT; with --key and --ca)")
	f.String("key", os.Getenv("RAFTLVS_KEY"), "client certificate's key, PEM, mode 0600 (env RAFTLVS_KEY)")
	f.String("ca", os.Getenv("RAFTLVS_CA"), "cluster CA certificate(s), PEM (env RAFTLVS_CA; a token alone pins its CA)")
	f.Bool("insecure", os.Getenv("RAFTLVS_INSECURE") == "1", "plain HTTP, no credentials: only for a cluster run with --insecure (env RAFTLVS_INSECURE=1)")
}

// apiClient builds the API client the global flags describe. Credentials, in order:
// --cert/--key (and --ca); else --token (with --ca, or pinning the CA the token names);
// else the files a director keeps under RAFTLVS_DATA_DIR (default /var/lib/raftlvs):
// tls/admin.pem (a bootstrap's admin certificate), then tls/node.pem. A token given
// with a certificate is sent too; the director goes by the certificate.
func apiClient(cmd *cobra.Command, addrs []string) (*api.Client, error) {
	get := func(name string) string { return cmd.Flag(name).Value.String() }
	if get("insecure") == "true" {
		if get("token") != "" || get("cert") != "" {
			return nil, usagef("--insecure sends no credentials: drop --token/--cert (a token over plain HTTP would travel in clear)")
		}
		return api.NewClient(addrs...), nil
	}
	cfg, err := clientTLS(get("cert"), get("key"), get("ca"), get("token"))
	if err != nil {
		return nil, err
	}
	c := api.NewTLSClient(cfg, addrs...)
	c.Token = get("token")
	return c, nil
}

func clientTLS(cert, key, ca, token string) (*tls.Config, error) {
	director := pki.Require(pki.RoleDirector)
	switch {
	case cert != "" || key != "":
		if cert == "" || key == "" || ca == "" {
			return nil, usagef("--cert, --key and --ca go together")
		}
		b, err := pki.LoadBundle(pki.Files{Cert: cert, Key: key, CA: ca})
		if err != nil {
			return nil, err
		}
		return pki.ClientConfig(b, director), nil
	case token != "":
		cred, err := pki.ParseCredential(token)
		if err != nil {
			return nil, usagef("--token: %v", err)
		}
		if ca == "" {
			return pki.PinnedClientConfig(cred.CAFingerprint, nil)
		}
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("--ca: %w", err)
		}
		trust, err := pki.TrustBundle(pem)
		if err != nil {
			return nil, fmt.Errorf("--ca %s: %w", ca, err)
		}
		return pki.ClientConfig(trust, director), nil
	}
	dir := cmp.Or(os.Getenv("RAFTLVS_DATA_DIR"), defaultDataDir)
	for _, f := range []pki.Files{daemon.AdminFiles(dir), pki.DataDirFiles(dir)} {
		if ca != "" {
			f.CA = ca
		}
		b, err := pki.LoadBundle(f)
		switch {
		case err == nil:
			return pki.ClientConfig(b, director), nil
		case errors.Is(err, fs.ErrNotExist):
			continue
		case errors.Is(err, fs.ErrPermission):
			return nil, fmt.Errorf("%w (run as root on a director, or give an operator token: RAFTLVS_TOKEN)", err)
		default:
			return nil, err
		}
	}
	return nil, usagef("no credentials for the director API: set RAFTLVS_TOKEN (make one on a director: raftlvs token create --role operator --access read|operate|admin), "+
		"give --cert/--key/--ca, run on a director as root (it finds %s), or --insecure for a cluster that runs without TLS", filepath.Join(dir, "tls"))
}

// failingTransport answers every request with the error that kept the client from
// being built: clientAt has no error to return, and each call then reports it.
type failingTransport struct{ err error }

func (t failingTransport) RoundTrip(*http.Request) (*http.Response, error) { return nil, t.err }

// directorTLSFlags are the director's security flags.
func directorTLSFlags(cmd *cobra.Command, cfg *directorConfig) {
	f := cmd.Flags()
	f.BoolVar(&cfg.Insecure, "insecure", false, "no TLS and no authentication anywhere (plain Raft, plain HTTP): only on purpose, for a lab")
	f.StringVar(&cfg.Token, "token", "", "join token (raftlvs token create --role director, on a director): obtains this director's certificate")
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "this director's certificate from your own PKI (PEM; with --tls-key and --tls-ca; default: made at bootstrap or with --token, under --data-dir/tls)")
	f.StringVar(&cfg.TLSKey, "tls-key", "", "its private key (PEM, mode 0600)")
	f.StringVar(&cfg.TLSCA, "tls-ca", "", "the CA certificate(s) to trust (PEM)")
	f.StringVar(&cfg.CACert, "ca-cert", "", "at bootstrap: sign with this CA (an intermediate of your root) instead of creating one")
	f.StringVar(&cfg.CAKey, "ca-key", "", "its private key (PEM, mode 0600)")
}

func (c *directorConfig) security() daemon.Security {
	return daemon.Security{
		Insecure: c.Insecure, Token: c.Token,
		Files:  pki.Files{Cert: c.TLSCert, Key: c.TLSKey, CA: c.TLSCA},
		CACert: c.CACert, CAKey: c.CAKey,
	}
}

// agentTLSFlags are the agent's security flags.
func agentTLSFlags(cmd *cobra.Command, cfg *agentConfig) {
	f := cmd.Flags()
	f.BoolVar(&cfg.Insecure, "insecure", false, "talk to the directors without TLS (only to a cluster run with --insecure)")
	f.StringVar(&cfg.Token, "token", "", "agent join token (raftlvs token create --role agent, on a director): obtains this agent's certificate for --addr")
	f.StringVar(&cfg.TLSDir, "tls-dir", "", "where the agent keeps its certificate (default: agent/tls beside --state-file)")
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "this agent's certificate from your own PKI (PEM; with --tls-key and --tls-ca)")
	f.StringVar(&cfg.TLSKey, "tls-key", "", "its private key (PEM, mode 0600)")
	f.StringVar(&cfg.TLSCA, "tls-ca", "", "the CA certificate(s) to trust (PEM)")
}

func (c *agentConfig) security() realserver.Security {
	return realserver.Security{
		Insecure: c.Insecure, Token: c.Token, Dir: c.TLSDir,
		Files: pki.Files{Cert: c.TLSCert, Key: c.TLSKey, CA: c.TLSCA},
	}
}

// reloadOnSIGHUP reloads the TLS files on every SIGHUP until ctx ends (they are also
// polled for change).
func reloadOnSIGHUP(ctx context.Context, reload func() error, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := reload(); err != nil {
					log.Error("SIGHUP: TLS material not reloaded; still using the previous one", "err", err)
				} else {
					log.Info("SIGHUP: TLS material checked")
				}
			}
		}
	}()
}
