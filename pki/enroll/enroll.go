// Package enroll is a joiner's side of the join flow: with nothing but a join token, it
// obtains a certificate signed by the cluster for a key made here, which never leaves
// the node. Directors (`director --join … --token`) and agents (`agent --join … --token`)
// use it alike; it links pki and the API client, not raft.
package enroll

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/fsm"
	"github.com/raftlvs/raftlvs/pki"
)

// DefaultTimeout bounds an enrolment: long enough for a bootstrap director to elect
// itself and install the cluster CA, short enough that a wrong address shows.
const DefaultTimeout = 2 * time.Minute

// Request is what a joiner asks for.
type Request struct {
	Token string       // rlv1.<id>.<secret>.<ca>
	ID    string       // the node id to certify
	IPs   []netip.Addr // the addresses to name (an agent: its real-server address)
	// Directors lists the API addresses to ask, called before each attempt (an agent
	// learns them from the gossip pool).
	Directors func() []string
	Files     pki.Files // where the key, certificate and CA go
	Timeout   time.Duration
	Logger    *slog.Logger
}

// Enroll obtains and saves a certificate for a new key. It reaches the cluster through a
// TLS config pinned to the token's CA fingerprint, so the token goes only to a director
// of that CA; it checks that the CA it gets back is that one, then writes the key (0600),
// the certificate and the CA. Directors that cannot answer yet (none reachable, no
// leader, no CA installed yet) are asked again until the timeout; a refused token ends
// it at once.
func Enroll(ctx context.Context, req Request) (*pki.Bundle, error) {
	log := cmp.Or(req.Logger, slog.Default())
	cred, err := pki.ParseCredential(req.Token)
	if err != nil {
		return nil, fmt.Errorf("join token: %w", err)
	}
	key, err := pki.GenerateKey()
	if err != nil {
		return nil, err
	}
	csr, err := pki.NewCSR(key, req.ID)
	if err != nil {
		return nil, err
	}
	pinned, err := pki.PinnedClientConfig(cred.CAFingerprint, nil)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(req.Timeout, DefaultTimeout))
	defer cancel()
	var resp *api.CertificateResponse
	for wait := 500 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		addrs := req.Directors()
		if len(addrs) > 0 {
			c := api.NewTLSClient(pinned, addrs...)
			c.Token = cred.Encode()
			c.Timeout = 10 * time.Second
			resp, err = c.RequestCertificate(ctx, api.CertificateRequest{ID: req.ID, CSR: string(csr), IPs: req.IPs})
			if err == nil {
				break
			}
			if !retryable(err) {
				return nil, fmt.Errorf("obtain a certificate with token %s: %w", cred, err)
			}
		} else {
			err = errors.New("no director known yet")
		}
		log.Warn("obtain a certificate: the cluster cannot answer yet", "token", cred, "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("obtain a certificate with token %s: gave up: %w", cred, err)
		case <-time.After(wait):
		}
	}
	cas, err := pki.ParseCerts([]byte(resp.CA))
	if err != nil {
		return nil, fmt.Errorf("the CA the cluster sent: %w", err)
	}
	if err := pki.CheckPin(cas[0], cred.CAFingerprint); err != nil {
		return nil, err
	}
	certs, err := pki.ParseCerts([]byte(resp.Certificate))
	if err != nil {
		return nil, fmt.Errorf("the certificate the cluster sent: %w", err)
	}
	b, err := pki.NewBundle(certs[0], key, cas...)
	if err != nil {
		return nil, err
	}
	if err := b.Save(req.Files); err != nil {
		return nil, err
	}
	log.Info("obtained a certificate from the cluster", "identity", b.Identity.String(), "ips", b.Identity.IPs,
		"serial", b.Leaf().SerialNumber.Text(16), "not_after", b.Leaf().NotAfter, "cert", req.Files.Cert)
	return b, nil
}

// retryable: nothing was refused; the cluster was not ready.
func retryable(err error) bool {
	var hs *api.HandshakeError
	switch {
	case errors.As(err, &hs):
		return false // a CA mismatch, plain HTTP…: asking again changes nothing
	case errors.Is(err, api.ErrUnreachable), errors.Is(err, api.ErrUnavailable):
		return true
	case errors.Is(err, api.ErrOutcomeUnknown):
		// The leader may have logged the certificate (and a director token's use): the
		// cluster lets the same id ask again with the same token.
		return true
	case errors.Is(err, fsm.ErrConflict):
		return true // no cluster CA installed yet: the new leader is about to
	}
	return false
}
