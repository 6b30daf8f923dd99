package main

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/raftlvs/raftlvs/fsm"
)

func TestVIPCommands(t *testing.T) {
	store, url := testDirector(t)
	mustRun(t, url, "service", "add", "-t", "192.0.2.10:80", "--name", "web")
	mustRun(t, url, "vip", "add", "10.0.0.100/24", "--interface", "eth1", "--name", "k8s-api")
	mustRun(t, url, "vip", "add", "192.0.2.10")
	store.View(func(st *fsm.State) {
		v, ok := st.DeclaredVIP(netip.MustParseAddr("10.0.0.100"))
		if !ok || v.Prefix.Bits() != 24 || v.Interface != "eth1" || v.Name != "k8s-api" {
			t.Errorf("declared %+v, %v", v, ok)
		}
	})

	code, out, stderr := raftlvs(t, url, "", "vip", "ls")
	if code != exitOK {
		t.Fatalf("vip ls: exit %d: %s", code, stderr)
	}
	want := []string{
		"VIP            INTERFACE          NAME     FROM",
		"10.0.0.100/24  eth1               k8s-api  declared",
		"192.0.2.10     (--vip-interface)  -        declared, services web",
	}
	if got := strings.Split(strings.TrimSpace(out), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("vip ls:\n%s\nwant\n%s", out, strings.Join(want, "\n"))
	}

	if code, _, _ := raftlvs(t, url, "", "vip", "add", "10.0.0.300"); code != exitUsage {
		t.Errorf("vip add of a bad address: exit %d, want %d", code, exitUsage)
	}
	if code, _, stderr := raftlvs(t, url, "", "vip", "add", "10.0.0.100"); code != exitError || !strings.Contains(stderr, "declared already") {
		t.Errorf("vip add of a declared VIP: exit %d %q", code, stderr)
	}
	mustRun(t, url, "vip", "rm", "10.0.0.100")
	store.View(func(st *fsm.State) {
		if len(st.DeclaredVIPs()) != 1 {
			t.Errorf("after rm: %+v", st.DeclaredVIPs())
		}
	})
}
