package apiserver

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/raftlvs/raftlvs/api"
)

func TestVIPLifecycle(t *testing.T) {
	store, srv := newTestServer(t)
	if err := store.Apply(t.Context(), webService); err != nil {
		t.Fatal(err)
	}

	rec := request(t, srv, "POST", "/v1/vips", `{"addr":"10.0.0.100/24","interface":"eth1","name":"k8s-api"}`)
	if rec.Code != http.StatusCreated {
		t.Fatalf("add: %d %s", rec.Code, rec.Body)
	}
	got := decode[api.VIPInfo](t, rec)
	if got.Prefix.String() != "10.0.0.100/24" || got.Interface != "eth1" || got.Name != "k8s-api" || !got.Declared {
		t.Errorf("add answered %+v", got)
	}
	for _, tc := range []struct{ body, field string }{
		{`{"addr":"10.0.0.100"}`, "prefix"},  // declared already
		{`{"addr":"10.0.0.0/24"}`, "prefix"}, // a network address
		{`{"addr":"10.0.0.7/33"}`, "addr"},
		{`{"addr":"eth0"}`, "addr"},
	} {
		rec := request(t, srv, "POST", "/v1/vips", tc.body)
		if rec.Code/100 != 4 {
			t.Errorf("add %s: %d, want a 4xx", tc.body, rec.Code)
			continue
		}
		if e := decode[api.Error](t, rec); e.Field != tc.field {
			t.Errorf("add %s: field %q, want %q (%s)", tc.body, e.Field, tc.field, e.Message)
		}
	}

	rec = request(t, srv, "GET", "/v1/vips", "")
	list := decode[api.VIPList](t, rec)
	var lines []string
	for _, v := range list.VIPs {
		lines = append(lines, v.Prefix.String()+" "+v.Interface+" "+v.Name+" "+fmtBool(v.Declared)+" "+strings.Join(v.Services, ","))
	}
	want := []string{"10.0.0.100/24 eth1 k8s-api declared ", "192.0.2.10/32   service web"}
	if !slices.Equal(lines, want) {
		t.Fatalf("list:\n%q\nwant\n%q", lines, want)
	}

	if rec := request(t, srv, "DELETE", "/v1/vips/10.0.0.100", ""); rec.Code != http.StatusNoContent {
		t.Fatalf("remove: %d %s", rec.Code, rec.Body)
	}
	if rec := request(t, srv, "DELETE", "/v1/vips/10.0.0.100", ""); rec.Code != http.StatusNotFound {
		t.Fatalf("remove again: %d, want 404", rec.Code)
	}
	// A service's VIP is not a declaration: it goes with its service.
	if rec := request(t, srv, "DELETE", "/v1/vips/192.0.2.10", ""); rec.Code != http.StatusNotFound {
		t.Fatalf("remove a service VIP: %d, want 404", rec.Code)
	}
}

func fmtBool(declared bool) string {
	if declared {
		return "declared"
	}
	return "service"
}

func TestParseVIP(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.100":            "10.0.0.100/32",
		"10.0.0.100/24":         "10.0.0.100/24",
		" 2001:db8::1/64":       "2001:db8::1/64",
		"::ffff:10.0.0.1":       "10.0.0.1/32",
		"::ffff:10.0.0.1/120":   "10.0.0.1/24",
		"10.0.0.1/33":           "",
		"fe80::1%eth0":          "",
		"::ffff:10.0.0.1/64":    "",
		"10.0.0.1/24/2":         "",
		"not an address at all": "",
	} {
		p, err := api.ParseVIP(in)
		switch {
		case want == "" && err == nil:
			t.Errorf("ParseVIP(%q) = %s, want an error", in, p)
		case want != "" && (err != nil || p.String() != want):
			t.Errorf("ParseVIP(%q) = %s, %v, want %s", in, p, err, want)
		}
	}
}
