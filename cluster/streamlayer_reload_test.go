package cluster

import (
	"crypto/tls"
	"log/slog"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlvs/raftlvs/pki"
	"github.com/raftlvs/raftlvs/pki/pkitest"
)

func tlsDialer(timeout time.Duration, cfg *tls.Config) *tls.Dialer {
	return &tls.Dialer{NetDialer: &net.Dialer{Timeout: timeout}, Config: cfg}
}

// answerRPCs answers every RPC a transport receives with success until stop closes.
func answerRPCs(trans *raft.NetworkTransport, stop <-chan struct{}) {
	for {
		select {
		case rpc := <-trans.Consumer():
			rpc.Respond(&raft.AppendEntriesResponse{Success: true}, nil)
		case <-stop:
			return
		}
	}
}

func reloader(t *testing.T, b *pki.Bundle) (*pki.Reloader, pki.Files) {
	t.Helper()
	files := pkitest.Save(t, t.TempDir(), b)
	r, err := pki.NewReloader(files, pki.ReloaderOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return r, files
}

// renew writes next over files and reloads r.
func renew(t *testing.T, r *pki.Reloader, files pki.Files, next *pki.Bundle) {
	t.Helper()
	if err := next.Save(files); err != nil {
		t.Fatal(err)
	}
	if changed, err := r.Reload(); err != nil || !changed {
		t.Fatalf("reload: changed=%v, %v", changed, err)
	}
}

func serialIs(want *big.Int) func(StreamHandshake) bool {
	return func(hs StreamHandshake) bool { return hs.Err == nil && hs.Cert.SerialNumber.Cmp(want) == 0 }
}

func TestAfterAReloadRestartedStreamsPresentTheNewCertificate(t *testing.T) {
	c := pkitest.NewCluster(t, "c0ffee")
	aFirst, aSecond := c.Director("a"), c.Director("a")
	bFirst, bSecond := c.Director("b"), c.Director("b")
	aSrc, aFiles := reloader(t, aFirst)
	bSrc, bFiles := reloader(t, bFirst)
	aTrans, aLayer, aSeen := newTLSTransport(t, aSrc)
	bTrans, bLayer, bSeen := newTLSTransport(t, bSrc)
	defer aTrans.Close()
	defer bTrans.Close()
	stop := make(chan struct{})
	defer close(stop)
	go answerRPCs(bTrans, stop)
	aSrc.Subscribe(func(*pki.Bundle) { aLayer.RestartStreams(aTrans) })
	bSrc.Subscribe(func(*pki.Bundle) { bLayer.RestartStreams(bTrans) })

	// rpc sends A → B until one succeeds: the first after a restart may meet a stream
	// closed under it.
	rpc := func(what string) {
		t.Helper()
		deadline := time.Now().Add(tlsBound)
		for {
			var resp raft.AppendEntriesResponse
			err := aTrans.AppendEntries("b", bTrans.LocalAddr(), &raft.AppendEntriesRequest{Term: 1}, &resp)
			if err == nil && resp.Success {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %v", what, err)
			}
		}
	}
	rpc("first RPC")
	bSeen.next(t, "B sees A's first certificate", serialIs(aFirst.Leaf().SerialNumber))
	aSeen.next(t, "A sees B's first certificate", serialIs(bFirst.Leaf().SerialNumber))

	// A renews: its pooled stream to B goes, and the next one shows B the new certificate.
	renew(t, aSrc, aFiles, aSecond)
	rpc("RPC after A's renewal")
	bSeen.next(t, "B sees A's renewed certificate", serialIs(aSecond.Leaf().SerialNumber))

	// B renews: B closes the stream A pooled to it, and A's next stream meets B's new
	// certificate.
	renew(t, bSrc, bFiles, bSecond)
	rpc("RPC after B's renewal")
	aSeen.next(t, "A sees B's renewed certificate", serialIs(bSecond.Leaf().SerialNumber))

	// No stream with an old certificate is left: every live stream was opened since.
	for _, layer := range []*TLSStreamLayer{aLayer, bLayer} {
		layer.mu.Lock()
		for sc := range layer.live {
			cs := sc.Conn.(*tls.Conn).ConnectionState()
			peer := cs.PeerCertificates[0].SerialNumber
			if peer.Cmp(aFirst.Leaf().SerialNumber) == 0 || peer.Cmp(bFirst.Leaf().SerialNumber) == 0 {
				t.Errorf("a stream still authenticated with a first certificate (serial %x)", peer)
			}
		}
		layer.mu.Unlock()
	}
}
