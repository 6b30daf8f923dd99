package pki_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// bound caps every wait in these tests; nothing is asserted on how long anything takes.
const bound = 10 * time.Second

// handshakeResult is what each side of one loopback handshake saw.
type handshakeResult struct {
	serverErr error
	serverCS  tls.ConnectionState
	clientErr error
	clientCS  tls.ConnectionState
}

// handshake runs one TLS handshake over loopback TCP. The server writes a byte once its
// handshake succeeded and the client reads it: under TLS 1.3 a client learns that the
// server refused its certificate only when it next reads.
func handshake(t *testing.T, server, client *tls.Config) handshakeResult {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()

	var res handshakeResult
	done := make(chan struct{})
	go func() {
		defer close(done)
		raw, err := ln.Accept()
		if err != nil {
			res.serverErr = err
			return
		}
		defer raw.Close()
		raw.SetDeadline(time.Now().Add(bound))
		conn := tls.Server(raw, server)
		if res.serverErr = conn.HandshakeContext(ctx); res.serverErr != nil {
			return
		}
		res.serverCS = conn.ConnectionState()
		conn.Write([]byte{1})
		// Wait for the client to close, so the byte is never lost to a reset.
		io.Copy(io.Discard, conn)
	}()

	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: bound}, Config: client}
	c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		res.clientErr = err
	} else {
		conn := c.(*tls.Conn)
		conn.SetDeadline(time.Now().Add(bound))
		res.clientCS = conn.ConnectionState()
		_, res.clientErr = conn.Read(make([]byte, 1))
		conn.Close()
	}
	<-done
	return res
}

// wantIs fails unless err wraps target.
func wantIs(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want one wrapping %q", what, err, target)
	}
}
