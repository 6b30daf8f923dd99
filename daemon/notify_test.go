//go:build linux

package daemon

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/daemon/notify"
	"github.com/raftlvs/raftlvs/fsm"
)

// TestNotifyHooksRunOnRoleChangesAndHealthTransitions: three directors with one hook
// for every event. The leader reports leader and the others follower; a committed health
// transition runs the health hook on every director, each saying its role; once both
// followers are gone, the last director reports the fault.
func TestNotifyHooksRunOnRoleChangesAndHealthTransitions(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "events")
	hook := filepath.Join(dir, "hook")
	if err := os.WriteFile(hook, []byte("#!/bin/sh\necho \"$RAFTLVS_DIRECTOR $RAFTLVS_ROLE $*\" >>"+out+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	events := func() []string {
		data, _ := os.ReadFile(out)
		return strings.Split(strings.TrimSpace(string(data)), "\n")
	}
	has := func(line string) func() bool {
		return func() bool { return slices.Contains(events(), line) }
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	hooks := func(o *Options) { o.Notify = notify.Hooks{Any: []string{hook}} }
	d1 := startDirector(t, "d1", key, "", hooks)
	waitUntil(t, "d1 leads", 20*time.Second, d1.node().IsLeader)
	d2 := startDirector(t, "d2", key, d1.d.APIAddr(), hooks)
	d3 := startDirector(t, "d3", key, d1.d.APIAddr(), hooks)
	waitUntil(t, "d1's leader hook", 20*time.Second, has("d1 leader leader d1 d1"))
	waitUntil(t, "d2's follower hook", 30*time.Second, has("d2 follower follower d2 d1"))
	waitUntil(t, "d3's follower hook", 30*time.Second, has("d3 follower follower d3 d1"))

	ctx := context.Background()
	rs := fsm.RealServer{Service: "web", Addr: netip.MustParseAddr("198.51.100.21"), Port: 80, Weight: 1, Origin: fsm.OriginOperator}
	for _, c := range []fsm.Command{
		fsm.AddService{Service: fsm.Service{Name: "web", Protocol: fsm.TCP, VIP: netip.MustParseAddr("192.0.2.80"), Port: 80}},
		fsm.AddRealServer{RealServer: rs},
		fsm.SetHealth{Key: rs.Key(), Health: fsm.HealthDown, Reason: "HTTP 503", Since: time.Now()},
	} {
		if err := d1.node().Apply(ctx, c); err != nil {
			t.Fatalf("%T: %v", c, err)
		}
	}
	for _, line := range []string{"d1 leader health web 198.51.100.21 80 down", "d2 follower health web 198.51.100.21 80 down", "d3 follower health web 198.51.100.21 80 down"} {
		waitUntil(t, line, 20*time.Second, has(line))
	}

	d2.stop()
	d3.stop()
	waitUntil(t, "d1's fault hook", 30*time.Second, func() bool {
		return slices.ContainsFunc(events(), func(l string) bool { return strings.HasPrefix(l, "d1 fault fault d1 no ") })
	})
	var d1Roles []string
	for _, l := range events() {
		if f := strings.Fields(l); f[0] == "d1" && f[2] != "health" {
			d1Roles = append(d1Roles, f[2])
		}
	}
	if !slices.Equal(d1Roles, []string{"leader", "fault"}) {
		t.Errorf("d1's role events %v, want leader then fault (all events: %q)", d1Roles, events())
	}
}
