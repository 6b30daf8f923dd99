package main

import (
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/cluster/apiserver"
	"github.com/raftlvs/raftlvs/fsm"
)

func TestStatusConnectionsListsAsIpvsadmLnc(t *testing.T) {
	store := &leaderStore{state: fsm.NewState()}
	srv := apiserver.New(store, nil)
	var asked int
	srv.Connections = func(limit int) (*api.ConnectionList, error) {
		asked = limit
		return &api.ConnectionList{Director: "d1", Total: 3, Connections: []api.Connection{
			{Protocol: "TCP", Client: netip.MustParseAddrPort("10.100.0.10:42450"), Virtual: netip.MustParseAddrPort("10.100.0.101:80"),
				Destination: netip.MustParseAddrPort("10.100.0.21:80"), State: "ESTABLISHED", ExpiresS: 899},
			{Protocol: "UDP", Client: netip.MustParseAddrPort("[2001:db8::a]:5060"), Virtual: netip.MustParseAddrPort("[2001:db8::64]:5060"),
				Destination: netip.MustParseAddrPort("[2001:db8::15]:5060"), State: "UDP", ExpiresS: 61, PEName: "sip", PEData: "call-1"},
		}}, nil
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	code, out, stderr := raftlvs(t, hs.URL, "", "status", "--connections", "--limit", "2")
	if code != exitOK {
		t.Fatalf("exit %d %s", code, stderr)
	}
	want := `IPVS connection entries of director d1 (the first 2 of 3; --limit for more)
pro expire state       source             virtual            destination
TCP 14:59  ESTABLISHED 10.100.0.10:42450  10.100.0.101:80    10.100.0.21:80
UDP 01:01  UDP         [2001:db8::a]:5060 [2001:db8::64]:5060 [2001:db8::15]:5060 sip call-1
`
	if out != want || asked != 2 {
		t.Errorf("asked for %d, printed\n%s\nwant\n%s", asked, out, want)
	}
	if code, out, _ := raftlvs(t, hs.URL, "", "status", "-c", "-o", "json"); code != exitOK || !strings.Contains(out, `"expires_s": 899`) || asked != api.DefaultConnections {
		t.Errorf("-c -o json: exit %d, asked %d\n%s", code, asked, out)
	}
	if code, _, stderr := raftlvs(t, hs.URL, "", "status", "-c", "--limit", "0"); code != exitUsage || !strings.Contains(stderr, "--limit") {
		t.Errorf("--limit 0: exit %d %q", code, stderr)
	}
	// A director without a data plane says so.
	_, plain := testDirector(t)
	if code, _, stderr := raftlvs(t, plain, "", "status", "--connections"); code != exitError || !strings.Contains(stderr, "no IPVS data plane") {
		t.Errorf("a witness: exit %d %q", code, stderr)
	}
}
