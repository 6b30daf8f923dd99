//go:build linux

package netlab

import (
	"context"
	"net"
	"net/http"
	"time"
)

// DialContext opens a connection from inside h, for an HTTP client that reaches the
// hosts' addresses (which the root namespace cannot).
func (h *Host) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var conn net.Conn
	err := inNamespace(h.NS, func() error {
		var err error
		d := net.Dialer{Timeout: 2 * time.Second}
		conn, err = d.DialContext(ctx, network, addr)
		return err
	})
	return conn, err
}

// HTTPClient is an HTTP client whose connections start inside h.
func (h *Host) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: h.DialContext, DisableKeepAlives: true}}
}
