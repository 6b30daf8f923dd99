//go:build linux

package daemon

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/fsm"
)

// TestAWriteThroughOneDirectorIsReadThroughAnother writes 1,000 times through one
// follower and after each write reads through the other follower at once, two ways: the
// writing client's own view (it carries the version its write returned), and a new
// client that saw nothing (a new CLI process: a consistent read, confirmed with the
// leader). Neither may ever miss the write. The reading follower is not part of the
// write's quorum wait (the leader and the writing path's follower are enough), so it
// often has not applied the write yet when the read arrives.
func TestAWriteThroughOneDirectorIsReadThroughAnother(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	// Followers hear of a commit within 5 ms rather than 50: the same lag, ten times
	// shorter, so that 1,000 rounds take seconds.
	quick := func(o *Options) { o.CommitTimeout = 5 * time.Millisecond }
	d1 := startDirector(t, "d1", key, "", quick)
	waitUntil(t, "d1 leads", 20*time.Second, d1.node().IsLeader)
	d2 := startDirector(t, "d2", key, d1.d.APIAddr(), quick)
	d3 := startDirector(t, "d3", key, d1.d.APIAddr(), quick)
	for _, d := range []*testDirector{d1, d2, d3} {
		waitUntil(t, d.id+" a voter that serves", 30*time.Second, func() bool {
			st := d.node().Status()
			return st.LeaderID != "" && len(st.Voters) == 3 && d.node().Serving()
		})
	}
	var writeVia, readVia *testDirector
	for _, d := range []*testDirector{d1, d2, d3} {
		switch {
		case d.node().IsLeader():
		case writeVia == nil:
			writeVia = d
		default:
			readVia = d
		}
	}
	if writeVia == nil || readVia == nil {
		t.Fatal("want two followers")
	}
	ctx := context.Background()
	writer := api.NewClient(writeVia.d.APIAddr())
	reader := api.NewClient(readVia.d.APIAddr())
	rsAddr := netip.MustParseAddr("198.51.100.21")
	if _, err := writer.AddService(ctx, fsm.Service{Name: "web", Protocol: fsm.TCP, VIP: netip.MustParseAddr("192.0.2.80"), Port: 80}); err != nil {
		t.Fatal(err)
	}
	if _, err := writer.AddRealServer(ctx, "web", api.RealServerRequest{Addr: rsAddr}); err != nil {
		t.Fatal(err)
	}
	weightOf := func(svc *api.ServiceInfo) int {
		for _, rs := range svc.RealServers {
			if rs.Addr == rsAddr {
				return rs.Weight
			}
		}
		return -1
	}
	const writes = 1000
	var lagging int // reads that found the follower behind the write: the case under test
	for i := 1; i <= writes; i++ {
		w := i + 1 // never the weight before
		if _, err := writer.EditRealServer(ctx, "web", rsAddr, 80, api.RealServerRequest{Weight: &w}); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		var applied uint64
		readVia.node().View(func(s *fsm.State) { applied = s.Version() })
		if applied < writer.SeenVersion() {
			lagging++
		}
		reader.ObserveVersion(writer.SeenVersion())
		svc, err := reader.Service(ctx, "web")
		if err != nil {
			t.Fatalf("read %d through %s: %v", i, readVia.id, err)
		}
		if got := weightOf(svc); got != w {
			t.Fatalf("read %d through %s right after the write through %s: weight %d, want %d", i, readVia.id, writeVia.id, got, w)
		}
		fresh := api.NewClient(readVia.d.APIAddr())
		fresh.Consistent = true
		svc, err = fresh.Service(ctx, "web")
		if err != nil {
			t.Fatalf("consistent read %d through %s: %v", i, readVia.id, err)
		}
		if got := weightOf(svc); got != w {
			t.Fatalf("consistent read %d through %s by a client that saw nothing: weight %d, want %d", i, readVia.id, got, w)
		}
	}
	t.Logf("%d writes through %s, each read at once through %s: %d found it behind the write", writes, writeVia.id, readVia.id, lagging)
	if lagging == 0 {
		t.Error("the reading follower never was behind a write: this proved nothing")
	}
}
