package pki_test

import (
	"net/netip"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/raftlvs/raftlvs/pki"
	"github.com/raftlvs/raftlvs/pki/pkitest"
)

func TestIdentityURIsReadBackAsTheyWereWritten(t *testing.T) {
	for _, id := range []pki.Identity{
		{Cluster: "c0ffee", Role: pki.RoleDirector, ID: "d1"},
		{Cluster: "prod_eu-1.lb", Role: pki.RoleAgent, ID: "rs:web-01"},
		{Cluster: "c0ffee", Role: pki.RoleOperator, ID: "alice", Access: pki.AccessOperate},
	} {
		u := id.URI()
		parsed, err := url.Parse(u.String())
		if err != nil {
			t.Fatal(err)
		}
		got, err := pki.ParseIdentityURI(parsed)
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		if !reflect.DeepEqual(got, id) {
			t.Errorf("%s read back as %+v, want %+v", u, got, id)
		}
	}
}

func TestIdentityURIsThatAreNotRaftlvsIdentitiesAreRefused(t *testing.T) {
	for _, s := range []string{
		"spiffe://c1/director/d1",               // another scheme
		"raftlvs://c1/director",                 // no id
		"raftlvs://c1/director/d1/x",            // too deep
		"raftlvs://c1/king/d1",                  // unknown role
		"raftlvs://c1/director/-d1",             // bad id
		"raftlvs://c1/director/d1?access=admin", // only operators carry access
		"raftlvs://c1/operator/alice",           // operator without access
		"raftlvs://c1/operator/alice?access=root",
		"raftlvs://c1:80/director/d1", // a port
		"raftlvs://u@c1/director/d1",  // a user
		"raftlvs://c1/director/d1#x",  // a fragment
		"raftlvs:///director/d1",      // no cluster
	} {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		_, err = pki.ParseIdentityURI(u)
		wantIs(t, s, err, pki.ErrNoIdentity)
	}
}

func TestIssuedCertificatesCarryTheirIdentity(t *testing.T) {
	c := pkitest.NewCluster(t, "c0ffee")
	rs := netip.MustParseAddr("192.0.2.10")
	b := c.Agent("web-01", rs)
	want := pki.Identity{Cluster: "c0ffee", Role: pki.RoleAgent, ID: "web-01", IPs: []netip.Addr{rs}}
	got, err := pki.IdentityOf(b.Leaf())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(b.Identity, want) {
		t.Errorf("identity %+v (bundle %+v), want %+v", got, b.Identity, want)
	}
	if !got.HasIP(rs) || got.HasIP(netip.MustParseAddr("192.0.2.11")) {
		t.Errorf("HasIP: the agent's certificate names %v only", rs)
	}
	if !got.HasIP(netip.MustParseAddr("::ffff:192.0.2.10")) {
		t.Error("HasIP: a v4-mapped form of a named address is that address")
	}
}

func TestAccessFollowsRoleAndLevel(t *testing.T) {
	director := pki.Identity{Role: pki.RoleDirector, ID: "d1"}
	agent := pki.Identity{Role: pki.RoleAgent, ID: "a1"}
	reader := pki.Identity{Role: pki.RoleOperator, ID: "bob", Access: pki.AccessRead}
	operator := pki.Identity{Role: pki.RoleOperator, ID: "carol", Access: pki.AccessOperate}
	admin := pki.Identity{Role: pki.RoleOperator, ID: "alice", Access: pki.AccessAdmin}
	for _, tc := range []struct {
		id      pki.Identity
		need    pki.Access
		allowed bool
		says    string // in the 403 message
	}{
		{director, pki.AccessAdmin, true, ""},
		{admin, pki.AccessAdmin, true, ""},
		{admin, pki.AccessRead, true, ""},
		{operator, pki.AccessOperate, true, ""},
		{operator, pki.AccessAdmin, false, "has operate access; this needs admin"},
		{reader, pki.AccessRead, true, ""},
		{reader, pki.AccessOperate, false, "has read access; this needs operate"},
		{agent, pki.AccessRead, false, "agents may only register and drain their own real servers"},
		{admin, pki.AccessNone, false, ""}, // no endpoint needs "nothing"
	} {
		err := pki.Authorize(tc.id, tc.need)
		if tc.id.Allows(tc.need) != tc.allowed || (err == nil) != tc.allowed {
			t.Errorf("%s needing %q: allowed=%v err=%v, want allowed=%v", tc.id, tc.need, tc.id.Allows(tc.need), err, tc.allowed)
			continue
		}
		if !tc.allowed {
			wantIs(t, tc.id.String(), err, pki.ErrForbidden)
			if !strings.Contains(err.Error(), tc.says) {
				t.Errorf("%s needing %q: %q does not say %q", tc.id, tc.need, err, tc.says)
			}
		}
	}
}

func TestClusterIDsMustFitAURIHost(t *testing.T) {
	for id, ok := range map[string]bool{"c0ffee": true, "prod_eu-1.lb": true, "prod:eu": false, "": false, "-x": false} {
		if err := pki.ValidClusterID(id); (err == nil) != ok {
			t.Errorf("ValidClusterID(%q) = %v, want ok=%v", id, err, ok)
		}
	}
}
