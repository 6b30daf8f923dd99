package director

import (
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The kernel's format (ip_vs_conn_seq_show): IPv4 in hex, IPv6 written out, ports in hex,
// the expiry in seconds, the persistence engine's name and data when there are any.
const connTable = `Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
TCP 0A64000A A5D2 0A640065 0050 0A640015 0050 ESTABLISHED     899
UDP 0A64000A 8B3A 0A640064 0035 0A640216 0035 UDP             287
TCP 2001:0db8:0000:0000:0000:0000:0000:000a D431 2001:0db8:0000:0000:0000:0000:0000:0064 01BB 2001:0db8:0000:0000:0000:0000:0001:0015 01BB SYN_RECV         59
UDP 0A64000A 13C4 0A640067 13C4 0A640017 13C4 UDP             120 sip 3c26700b-7f0a@10.100.0.10
`

func TestParseConnectionsReadsTheKernelsTable(t *testing.T) {
	got, total, err := ParseConnections(strings.NewReader(connTable), 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []Connection{
		{Protocol: "TCP", Client: netip.MustParseAddrPort("10.100.0.10:42450"), Virtual: netip.MustParseAddrPort("10.100.0.101:80"),
			Destination: netip.MustParseAddrPort("10.100.0.21:80"), State: "ESTABLISHED", Expires: 899 * time.Second},
		{Protocol: "UDP", Client: netip.MustParseAddrPort("10.100.0.10:35642"), Virtual: netip.MustParseAddrPort("10.100.0.100:53"),
			Destination: netip.MustParseAddrPort("10.100.2.22:53"), State: "UDP", Expires: 287 * time.Second},
		{Protocol: "TCP", Client: netip.MustParseAddrPort("[2001:db8::a]:54321"), Virtual: netip.MustParseAddrPort("[2001:db8::64]:443"),
			Destination: netip.MustParseAddrPort("[2001:db8::1:15]:443"), State: "SYN_RECV", Expires: 59 * time.Second},
		{Protocol: "UDP", Client: netip.MustParseAddrPort("10.100.0.10:5060"), Virtual: netip.MustParseAddrPort("10.100.0.103:5060"),
			Destination: netip.MustParseAddrPort("10.100.0.23:5060"), State: "UDP", Expires: 120 * time.Second,
			PEName: "sip", PEData: "3c26700b-7f0a@10.100.0.10"},
	}
	if total != 4 || len(got) != len(want) {
		t.Fatalf("%d of %d entries, want 4 of 4: %+v", len(got), total, got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	first, total, err := ParseConnections(strings.NewReader(connTable), 2)
	if err != nil || len(first) != 2 || total != 4 || first[1] != want[1] {
		t.Errorf("limit 2: %d entries of %d, %v; want the first 2 of 4", len(first), total, err)
	}
}

func TestParseConnectionsRefusesWhatIsNotTheTable(t *testing.T) {
	for _, bad := range []string{
		"Pro FromIP\nTCP 0A64000A A5D2 0A640065\n",                                     // fields missing
		"Pro FromIP\nTCP 0A6400 A5D2 0A640065 0050 0A640015 0050 ESTABLISHED 899\n",    // a short address
		"Pro FromIP\nTCP 0A64000A XYZ1 0A640065 0050 0A640015 0050 ESTABLISHED 899\n",  // a bad port
		"Pro FromIP\nTCP 0A64000A A5D2 0A640065 0050 0A640015 0050 ESTABLISHED soon\n", // a bad expiry
	} {
		if _, _, err := ParseConnections(strings.NewReader(bad), 0); err == nil || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("%q: %v, want an error naming line 2", bad, err)
		}
	}
	if _, _, err := (ProcConnections{Path: filepath.Join(t.TempDir(), "ip_vs_conn")}).Connections(0); !errors.Is(err, ErrNoConnectionTable) {
		t.Errorf("no table file: %v, want ErrNoConnectionTable", err)
	}
}
