//go:build lab

package syncd

import (
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// labNetns creates a named namespace with a dummy interface "sync0" that is up.
func labNetns(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("syncd-lab-%d", os.Getpid())
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.NewNamed(name)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	t.Cleanup(func() { netns.DeleteNamed(name) })
	// Still inside the new namespace on this locked thread.
	link := &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "sync0", MTU: 1500}}
	err = netlink.LinkAdd(link)
	if err == nil {
		err = netlink.LinkSetUp(link)
	}
	if serr := netns.Set(orig); serr != nil {
		t.Fatal(serr)
	}
	if err != nil {
		t.Fatalf("dummy interface: %v", err)
	}
	return "/var/run/netns/" + name
}

func TestLabStartListStop(t *testing.T) {
	c, err := Open(labNetns(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer c.Close()
	backup := Config{Interface: "sync0", SyncID: 7}
	master := Config{Interface: "sync0", SyncID: 7, Group: netip.MustParseAddr("224.0.0.81"), Port: 8848, TTL: 1, MaxLen: 1472}
	for _, step := range []struct {
		name string
		do   func() error
	}{
		{"start backup", func() error { return c.Start(Backup, backup) }},
		{"start master", func() error { return c.Start(Master, master) }},
		{"start master again", func() error { return c.Start(Master, master) }},
	} {
		if err := step.do(); err != nil {
			dumpBlockedTasks()
			t.Fatalf("%s: %v", step.name, err)
		}
	}
	ds, err := c.List()
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	slices.SortFunc(ds, func(a, b Daemon) int { return int(a.State) - int(b.State) })
	if len(ds) != 2 || ds[0].State != Master || ds[1].State != Backup {
		t.Fatalf("List = %+v, want master and backup", ds)
	}
	if m := ds[0]; m.Interface != "sync0" || m.SyncID != 7 || m.MaxLen != 1472 || m.Port != 8848 || m.TTL != 1 ||
		m.Group != netip.MustParseAddr("224.0.0.81") {
		t.Errorf("master = %+v", m)
	}
	if b := ds[1]; b.Interface != "sync0" || b.SyncID != 7 {
		t.Errorf("backup = %+v", b)
	}
	for _, s := range []State{Master, Backup, Master, Backup} { // the second round is a no-op
		if err := c.Stop(s); err != nil {
			dumpBlockedTasks()
			t.Fatalf("stop %s: %v", s, err)
		}
	}
	if ds, err := c.List(); err != nil || len(ds) != 0 {
		t.Errorf("List after stop = %+v, %v; want none", ds, err)
	}
}

// dumpBlockedTasks has the lab kernel print its blocked tasks to the console (the lab
// log keeps it): a sync daemon call without an answer is then explained by the stacks.
func dumpBlockedTasks() { os.WriteFile("/proc/sysrq-trigger", []byte("w"), 0) }
