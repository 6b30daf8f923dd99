//go:build linux

package netlab

import (
	"context"
	"net"
	"net/http"
	"net/netip"
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

// Poke sends addr one UDP datagram from h, so that h resolves addr's MAC (its neighbour
// table then says who answered).
func (h *Host) Poke(addr netip.Addr) error {
	c, err := h.DialContext(context.Background(), "udp", netip.AddrPortFrom(addr, 9).String())
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte("who has this address?"))
	return err
}

// Holders names the hosts, among names, whose eth0 carries addr.
func (l *Lab) Holders(addr netip.Addr, names ...string) []string {
	var out []string
	for _, n := range names {
		if ok, _ := l.Host(n).Holds(addr); ok {
			out = append(out, n)
		}
	}
	return out
}
