//go:build linux

package daemon

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/director"
	"github.com/raftlvs/raftlvs/fsm"
)

// connTable is a kernel connection table of fixed lines in the kernel's format.
type connTable string

func (t connTable) Connections(limit int) ([]director.Connection, int, error) {
	return director.ParseConnections(strings.NewReader(string(t)), limit)
}

func TestConnectionsComeFromTheDirectorsKernel(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	table := connTable("Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n" +
		"TCP 0A64000A A5D2 0A640065 0050 0A640015 0050 ESTABLISHED     899\n" +
		"TCP 0A64000A A5D3 0A640065 0050 0A640016 0050 FIN_WAIT         90\n")
	d1 := startDirector(t, "d1", key, "", func(o *Options) { o.Kernel.Conns = table })
	waitUntil(t, "d1 leads", 20*time.Second, d1.node().IsLeader)
	c := api.NewClient(d1.d.APIAddr())
	list, err := c.Connections(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	want := api.Connection{Protocol: "TCP", Client: netip.MustParseAddrPort("10.100.0.10:42450"), Virtual: netip.MustParseAddrPort("10.100.0.101:80"),
		Destination: netip.MustParseAddrPort("10.100.0.21:80"), State: "ESTABLISHED", ExpiresS: 899}
	if list.Director != "d1" || list.Total != 2 || len(list.Connections) != 1 || list.Connections[0] != want {
		t.Errorf("connections %+v, want d1's first of 2: %+v", list, want)
	}
	// A kernel without the table (this test's other directors) answers 404, saying why.
	d2 := startDirector(t, "d2", key, "")
	waitUntil(t, "d2 leads its own cluster", 20*time.Second, d2.node().IsLeader)
	if _, err := api.NewClient(d2.d.APIAddr()).Connections(context.Background(), 0); !errors.Is(err, fsm.ErrNotFound) || !strings.Contains(err.Error(), "no IPVS connection table") {
		t.Errorf("a kernel without a connection table: %v, want not found", err)
	}
}
