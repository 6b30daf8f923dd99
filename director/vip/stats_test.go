package vip

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

func TestStatsCountAnnouncementsAndFailuresAcrossClaimsAndEventsTellEachChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var events []Event
		r := newRig(t, Config{Burst: 3, BurstInterval: time.Second, Refresh: -1,
			OnEvent: func(e Event) { events = append(events, e) }})
		r.ann.Fail(vip4b, errBoom)
		if err := r.owner.Claim(context.Background(), []netip.Addr{vip4a, vip4b, vip6}); err == nil {
			t.Fatal("Claim: no error for the failing announcement")
		}
		advance(5 * time.Second) // the bursts are over
		st := r.owner.Stats()
		byAddr := map[netip.Addr]VIPStats{}
		for _, s := range st {
			byAddr[s.Addr] = s
		}
		if s := byAddr[vip4a]; !s.Held || s.Since != r.start || s.GARPs != 3 || s.NAs != 0 || s.AnnounceErrors != 0 {
			t.Errorf("%s: %+v, want held since the claim with 3 GARPs", vip4a, s)
		}
		if s := byAddr[vip4b]; !s.Held || s.GARPs != 0 || s.AnnounceErrors != 3 {
			t.Errorf("%s: %+v, want held with 3 failed announcements", vip4b, s)
		}
		if s := byAddr[vip6]; !s.Held || s.NAs != 3 || s.GARPs != 0 {
			t.Errorf("%s: %+v, want held with 3 NAs", vip6, s)
		}
		r.links.RemovePrefix(ifname, vip4a) // someone removes it; the owner does not look until a refresh
		if err := r.owner.Release(); err != nil {
			t.Fatal(err)
		}
		r.links.Fail(OpAddrReplace, vip4a, errBoom)
		if err := r.owner.Claim(context.Background(), []netip.Addr{vip4a}); err == nil {
			t.Fatal("second Claim: no error for the failing add")
		}
		if err := r.owner.Release(); err != nil {
			t.Fatal(err)
		}
		st = r.owner.Stats()
		if i := slices.IndexFunc(st, func(s VIPStats) bool { return s.Addr == vip4a }); i < 0 || st[i].Held || st[i].GARPs != 3 || st[i].AddErrors != 1 {
			t.Errorf("%s after a failed second claim: %+v, want not held, 3 GARPs kept, 1 add error", vip4a, st)
		}
		var kinds []string
		for _, e := range events {
			kinds = append(kinds, string(e.Kind)+" "+e.VIP.String())
		}
		want := []string{"claimed 10.0.0.100", "claimed 10.0.0.101", "claimed 2001:db8::100",
			"released 10.0.0.100", "released 10.0.0.101", "released 2001:db8::100"}
		if !slices.Equal(kinds, want) {
			t.Errorf("events %q, want %q", kinds, want)
		}
	})
}
