//go:build lab

// The TUN test needs a kernel with IPIP, which the build machines lack: build it with
// `go test -c -tags lab ./realserver` and run the binary in the kernel lab's VM.

package realserver

import (
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestLabNetlinkHostConvergesTUNAndUndoRestoresIt(t *testing.T) {
	ns := testNS(t, netip.MustParsePrefix("192.0.2.10/24"))
	if !hasIPIP(t, ns) { // loads ipip if it can, which creates tunl0 (down) in every namespace
		t.Fatal("this kernel has no IPIP: run the lab test in the kernel lab's VM")
	}
	// Strict reverse path filtering, as some distributions set it, so the relaxation shows.
	for _, l := range []string{"all", "default", "rs0"} {
		writeProcSys(t, ns, confPath(l, "rp_filter"), 1)
	}
	if _, has := snapshot(t, ns).addrs[IPIPLink]; has {
		writeProcSys(t, ns, confPath(IPIPLink, "rp_filter"), 1)
	}
	before := snapshot(t, ns)

	host, err := NewNetlinkHostAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	c, err := NewConfigurator(host, ConfiguratorConfig{Interface: "rs0", StateFile: statePath(t), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Converge([]Binding{tun("192.0.2.100")}); err != nil {
		t.Fatal(err)
	}

	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	tunl, err := h.LinkByName(IPIPLink)
	if err != nil {
		t.Fatal(err)
	}
	if tunl.Attrs().Flags&net.FlagUp == 0 {
		t.Error("tunl0 is not up")
	}
	if addrs := snapshot(t, ns).addrs[IPIPLink]; !slices.Contains(addrs, "192.0.2.100/32 scope 254 label tunl0:raftlvs") {
		t.Errorf("tunl0 has %q, want the VIP with scope host", addrs)
	}
	got := readProcSys(t, ns, confPaths("all", IPIPLink, "rs0")...)
	for path, want := range map[string]int{
		confPath("all", "rp_filter"): 0, confPath(IPIPLink, "rp_filter"): 0,
		confPath("all", "arp_ignore"): 1, confPath("all", "arp_announce"): 2,
		confPath("rs0", "rp_filter"): 1, // untouched: the outer packets come from a director
	} {
		if got[path] != want {
			t.Errorf("%s = %d inside the namespace, want %d", path, got[path], want)
		}
	}

	if err := c.Undo(); err != nil {
		t.Fatal(err)
	}
	after := snapshot(t, ns)
	if _, created := before.addrs[IPIPLink]; !created {
		// The agent created tunl0 itself (net.core.fb_tunnels_only_for_init_net), and
		// deleting a non-fallback device works: nothing may be left.
		if _, left := after.addrs[IPIPLink]; left {
			t.Error("undo left the tunl0 the agent created")
		}
	}
	if !after.equal(before) {
		t.Errorf("undo did not restore the namespace:\nbefore %v\nafter  %v", before, after)
	}
	if l, err := h.LinkByName(IPIPLink); err == nil && l.Attrs().Flags&net.FlagUp != 0 {
		t.Error("undo left tunl0 up")
	}
}
