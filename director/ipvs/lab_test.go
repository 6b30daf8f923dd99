//go:build lab

package ipvs

import (
	"io"
	"log/slog"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/raftlvs/raftlvs/fsm"
)

// ipvsadmSave runs `ipvsadm -Sn` in the namespace and returns its lines sorted: the
// kernel lists services in hash order.
func ipvsadmSave(t *testing.T, nsName string) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", nsName, "ipvsadm", "-Sn").CombinedOutput()
	if err != nil {
		t.Fatalf("ipvsadm -Sn: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	slices.Sort(lines)
	return lines
}

func ipvsadm(t *testing.T, nsName string, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", nsName, "ipvsadm"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ipvsadm %v: %v\n%s", args, err, out)
	}
}

// routeEverything gives the namespace a default route (IPv4 and IPv6) through a dummy
// link: the kernel refuses a destination it has no route to ("address not unicast").
func routeEverything(t *testing.T, nsName string) {
	t.Helper()
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "lab0", "type", "dummy"},
		{"link", "set", "lab0", "up"},
		{"route", "add", "default", "dev", "lab0"},
		{"-6", "route", "add", "default", "dev", "lab0"},
	} {
		if out, err := exec.Command("ip", append([]string{"-n", nsName}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip -n %s %v: %v\n%s", nsName, args, err, out)
		}
	}
}

func TestLabReconcilerProgramsRealKernel(t *testing.T) {
	path := withNamedNetns(t)
	nsName := filepath.Base(path)
	routeEverything(t, nsName)
	k, err := NewLinux(path)
	if err != nil {
		t.Fatalf("NewLinux: %v", err)
	}
	defer k.Close()

	// A service set up by hand before raftlvs: it must survive everything below.
	ipvsadm(t, nsName, "-A", "-t", "198.51.100.1:443", "-s", "rr")
	ipvsadm(t, nsName, "-a", "-t", "198.51.100.1:443", "-r", "10.9.9.9:443", "-m", "-w", "3")

	h := &harness{t: t, st: fsm.NewState(), dir: t.TempDir()}
	r, err := NewReconciler(ReconcilerConfig{Kernel: k, StateDir: h.dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	h.r = r
	h.exec(
		fsm.AddService{Service: webService()},
		fsm.AddRealServer{RealServer: rs("web", "10.0.0.1", 8080, 1)},
		fsm.AddRealServer{RealServer: rs("web", "10.0.0.2", 8080, 2)},
		fsm.AddService{Service: fsm.Service{Name: "dns", Protocol: fsm.UDP, VIP: dnsVIP, Port: 53, Scheduler: "rr", Forwarding: fsm.DR}},
		fsm.AddRealServer{RealServer: rs("dns", "2001:db8::1", 53, 1)},
		fsm.AddRealServer{RealServer: rs("dns", "2001:db8::2", 53, 1)},
		fsm.AddService{Service: fsm.Service{Name: "fw", FWMark: 100, Scheduler: "sh", Persistence: 300, PersistMask: 24, Forwarding: fsm.TUN}},
		fsm.AddRealServer{RealServer: rs("fw", "10.0.1.1", 0, 5)},
	)
	h.sync()

	want := []string{
		"-A -t 192.0.2.10:80 -s wlc",
		"-a -t 192.0.2.10:80 -r 10.0.0.1:8080 -m -w 1",
		"-a -t 192.0.2.10:80 -r 10.0.0.2:8080 -m -w 2",
		"-A -u [2001:db8::53]:53 -s rr",
		"-a -u [2001:db8::53]:53 -r [2001:db8::1]:53 -g -w 1",
		"-a -u [2001:db8::53]:53 -r [2001:db8::2]:53 -g -w 1",
		"-A -f 100 -s sh -p 300 -M 255.255.255.0",
		"-a -f 100 -r 10.0.1.1:0 -i -w 5 --tun-type ipip", // ipvsadm 1.31 names the tunnel type
		"-A -t 198.51.100.1:443 -s rr",
		"-a -t 198.51.100.1:443 -r 10.9.9.9:443 -m -w 3",
	}
	slices.Sort(want)
	if got := ipvsadmSave(t, nsName); !slices.Equal(got, want) {
		t.Fatalf("ipvsadm -Sn:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Real normalisation: nothing to do on an unchanged table, whatever the kernel reports.
	if p := h.sync(); p.Ops.Total() != 0 {
		t.Errorf("second sync: %s, want no operations", p.Ops)
	}
	if p, err := r.RepairAll(); err != nil || p.Ops.Writes() != 0 {
		t.Errorf("repair over an unchanged kernel table: %s, %v; want no writes", p.Ops, err)
	}

	// ipvsadm -D of one service is repaired; the foreign service stays.
	ipvsadm(t, nsName, "-D", "-t", "192.0.2.10:80")
	if _, err := r.Repair(); err != nil {
		t.Fatalf("Repair: %v", err)
	}
	if got := ipvsadmSave(t, nsName); !slices.Equal(got, want) {
		t.Fatalf("after ipvsadm -D and a repair:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A weight edited by hand is put back by the full sweep.
	ipvsadm(t, nsName, "-e", "-t", "192.0.2.10:80", "-r", "10.0.0.2:8080", "-m", "-w", "9")
	if _, err := r.RepairAll(); err != nil {
		t.Fatalf("RepairAll: %v", err)
	}
	if got := ipvsadmSave(t, nsName); !slices.Equal(got, want) {
		t.Fatalf("after ipvsadm -e and a repair:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Removing every raftlvs service leaves only the foreign one.
	h.exec(fsm.RemoveService{Name: "web"}, fsm.RemoveService{Name: "dns"}, fsm.RemoveService{Name: "fw"})
	h.sync()
	foreign := []string{"-A -t 198.51.100.1:443 -s rr", "-a -t 198.51.100.1:443 -r 10.9.9.9:443 -m -w 3"}
	if got := ipvsadmSave(t, nsName); !slices.Equal(got, foreign) {
		t.Errorf("after removing every raftlvs service:\n%s\nwant only the foreign service", strings.Join(got, "\n"))
	}
}
