//go:build lab

package ipvs

import (
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
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

func ipvsadm(t testing.TB, nsName string, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", nsName, "ipvsadm"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ipvsadm %v: %v\n%s", args, err, out)
	}
}

// routeEverything gives the namespace a default route (IPv4 and IPv6) through a dummy
// link: the kernel refuses a destination it has no route to ("address not unicast").
func routeEverything(t testing.TB, nsName string) {
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

// labKernel opens the IPVS table of a namespace made for the test, with routes to
// everything, and returns the namespace's name.
func labKernel(t testing.TB) (string, *Linux) {
	t.Helper()
	path := withNamedNetns(t)
	nsName := filepath.Base(path)
	routeEverything(t, nsName)
	k, err := NewLinux(path)
	if err != nil {
		t.Fatalf("NewLinux: %v", err)
	}
	t.Cleanup(k.Close)
	return nsName, k
}

func TestLabReconcilerProgramsRealKernel(t *testing.T) {
	nsName, k := labKernel(t)

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

// Many writes in few system calls against the real kernel: every op gets its own answer,
// including failures in the middle of a call, and ipvsadm sees exactly what was written.
func TestLabBatchedWritesAnswerEachOp(t *testing.T) {
	nsName, k := labKernel(t)
	const services, dests = 300, 4
	svc := func(i int) Service {
		return Service{Family: FamilyIPv4, Protocol: ProtocolTCP, Address: netip.AddrFrom4([4]byte{10, 200, byte(i >> 8), byte(i)}),
			Port: 80, Scheduler: "wrr", Netmask: 0xffffffff}
	}
	dest := func(j, weight int) Destination {
		return Destination{Address: netip.AddrFrom4([4]byte{10, 201, 0, byte(j + 1)}), Port: 8080, Weight: weight, Forwarding: ForwardMasq}
	}
	var ops []Op
	wantErr := map[int]error{}
	for i := range services {
		ops = append(ops, Op{Kind: OpAddService, Service: svc(i)})
		for j := range dests {
			ops = append(ops, Op{Kind: OpAddDestination, Service: svc(i), Destination: dest(j, 1)})
		}
		switch i {
		case 40: // a duplicate in the middle of a system call
			wantErr[len(ops)] = syscall.EEXIST
			ops = append(ops, Op{Kind: OpAddService, Service: svc(i)})
		case 200: // a real server of a service that does not exist
			wantErr[len(ops)] = syscall.ESRCH
			ops = append(ops, Op{Kind: OpAddDestination, Service: svc(services + 1), Destination: dest(0, 1)})
		}
	}
	wantErr[len(ops)] = syscall.ENOENT // the last message of a call fails too
	ops = append(ops, Op{Kind: OpUpdateDestination, Service: svc(0), Destination: dest(dests, 1)})
	for i, err := range k.Apply(ops) {
		if want := wantErr[i]; !errors.Is(err, want) {
			t.Errorf("op %d (%s %s %s): %v, want %v", i, ops[i].Kind, ops[i].Service.Key(), ops[i].Destination.Key(), err, want)
		}
	}
	if got := len(ipvsadmSave(t, nsName)); got != services*(1+dests) {
		t.Fatalf("ipvsadm -Sn: %d lines, want %d", got, services*(1+dests))
	}

	// Edits and deletes in one call: every weight to 2, the last real server of each
	// service removed.
	ops = ops[:0]
	for i := range services {
		for j := range dests - 1 {
			ops = append(ops, Op{Kind: OpUpdateDestination, Service: svc(i), Destination: dest(j, 2)})
		}
		ops = append(ops, Op{Kind: OpDeleteDestination, Service: svc(i), Destination: dest(dests-1, 0)})
	}
	for i, err := range k.Apply(ops) {
		if err != nil {
			t.Fatalf("op %d (%s): %v", i, ops[i].Kind, err)
		}
	}
	got := ipvsadmSave(t, nsName)
	if len(got) != services*dests || !slices.Contains(got, "-a -t 10.200.1.43:80 -r 10.201.0.3:8080 -m -w 2") ||
		slices.Contains(got, "-a -t 10.200.1.43:80 -r 10.201.0.4:8080 -m -w 1") {
		t.Fatalf("after the edits, ipvsadm -Sn has %d lines:\n%s", len(got), strings.Join(got[:min(len(got), 8)], "\n"))
	}
	ops = ops[:0]
	for i := range services {
		ops = append(ops, Op{Kind: OpDeleteService, Service: svc(i)})
	}
	for i, err := range k.Apply(ops) {
		if err != nil {
			t.Fatalf("delete %d: %v", i, err)
		}
	}
	if got := ipvsadmSave(t, nsName); len(got) != 1 || got[0] != "" {
		t.Fatalf("after deleting every service: %q", got)
	}
}

// BenchmarkLabProgram10k programs 10,000 services × 10 real servers (110,000 rules) into
// an empty namespace of its own with the Reconciler over Linux: one director's share of a
// restore, without Raft. `lab.sh bench` runs it beside `ipvsadm -R` of as many rules.
func BenchmarkLabProgram10k(b *testing.B) {
	st := bigState(b, 10_000, 10)
	nsName, k := labKernel(b)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		ipvsadm(b, nsName, "-C")
		r, err := NewReconciler(ReconcilerConfig{Kernel: k, StateDir: b.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		p, err := r.Sync(st)
		if err != nil || p.Ops.Writes() != 110_000 {
			b.Fatalf("pass: %s, %v", p.Ops, err)
		}
	}
}
