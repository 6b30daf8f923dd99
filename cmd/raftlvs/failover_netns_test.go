//go:build linux

package main

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/internal/netlab"
)

// This file runs real `raftlvs director --vip-only` processes (this test binary, which
// is raftlvs when TestMain sees asMainEnv) in network namespaces on one bridge, with
// Raft between them over that bridge, and a client namespace whose neighbour table and
// ARP answers say who holds the VIP: fencing of a leader frozen with SIGSTOP, and planned
// handovers through transfer and SIGTERM.

const asMainEnv = "RAFTLVS_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) == "1" {
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

var failoverVIP = netip.MustParseAddr("10.99.1.100")

type procLab struct {
	t     *testing.T
	lab   *netlab.Lab
	dir   string
	procs map[string]*netlab.Proc
}

func directorIP(id string) netip.Addr { return netip.AddrFrom4([4]byte{10, 99, 1, id[1] - '0'}) }

func (l *procLab) start(id string, bootstrap bool) {
	l.t.Helper()
	self, err := os.Executable()
	if err != nil {
		l.t.Fatal(err)
	}
	ip := directorIP(id).String()
	args := []string{"director", "--id", id, "--data-dir", filepath.Join(l.dir, id),
		"--raft-addr", ip + ":7000", "--api-addr", ip + ":7080", "--gossip-addr", ip + ":7946",
		"--vip-interface", "eth0", "--vip-only", "--log-level", "info", "--insecure",
		// raft's own (slower) timings: race-detector binaries on two shared cores stall.
		"--raft-timing", "relaxed",
		// An announcement every 100 ms: whenever the leader is frozen, one falls due.
		"--garp-burst", "100000", "--garp-interval", "100ms"}
	if bootstrap {
		args = append(args, "--bootstrap")
	} else {
		args = append(args, "--join", directorIP("d1").String()+":7080")
	}
	p, err := l.lab.Host(id).Start(filepath.Join(l.dir, id+".log"),
		[]string{asMainEnv + "=1", "RAFTLVS_GOSSIP_KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}, self, args...)
	if err != nil {
		l.t.Fatal(err)
	}
	l.procs[id] = p
}

func (l *procLab) client(id string) *api.Client {
	c := api.NewClient(directorIP(id).String() + ":7080")
	c.HTTP = l.lab.Host("c").HTTPClient()
	c.Timeout = 2 * time.Second
	return c
}

// leader is the leader every running director names, "" until they agree.
func (l *procLab) leader(running ...string) string {
	leader := ""
	for _, id := range running {
		st, err := l.client(id).Status(context.Background(), false)
		if err != nil || st.Node.LeaderID == "" || (leader != "" && st.Node.LeaderID != leader) {
			return ""
		}
		leader = st.Node.LeaderID
	}
	return leader
}

// holders lists the directors whose eth0 carries the VIP.
func (l *procLab) holders() []string { return l.lab.Holders(failoverVIP, "d1", "d2", "d3") }

// movedTo waits until one director other than from leads among running, holds the VIP
// (alone, unless from is frozen: a stopped process's addresses stay on its interface),
// and the client's neighbour entry for the VIP names its MAC; it returns it.
func (l *procLab) movedTo(from string, fromFrozen bool, running ...string) string {
	l.t.Helper()
	var to string
	waitWithin(l.t, "the VIP to move off "+from, 60*time.Second, func() bool {
		to = l.leader(running...)
		h := l.holders()
		if to == "" || to == from || !slices.Contains(h, to) {
			return false
		}
		if want := 1 + btoi(fromFrozen && slices.Contains(h, from)); len(h) != want {
			return false
		}
		l.poke()
		mac, _, err := l.lab.Host("c").Neighbour(failoverVIP)
		return err == nil && bytes.Equal(mac, l.lab.Host(to).MAC)
	})
	return to
}

// poke makes the client resolve the VIP.
func (l *procLab) poke() { l.lab.Host("c").Poke(failoverVIP) }

// neverOnTwo checks, from the directors' address notifications, that the VIP left from
// before it reached to.
func neverOnTwo(t *testing.T, events <-chan netlab.AddrEvent, from, to string) {
	t.Helper()
	var released, claimed time.Time
	for len(events) > 0 {
		e := <-events
		switch {
		case e.Host == from && !e.Added && released.IsZero():
			released = e.At
		case e.Host == to && e.Added && claimed.IsZero():
			claimed = e.At
		}
	}
	if released.IsZero() || claimed.IsZero() {
		t.Fatalf("address notifications: %s released at %v, %s claimed at %v: want both", from, released, to, claimed)
	}
	if claimed.Before(released) {
		t.Fatalf("the VIP was on %s and %s at once for %v", from, to, released.Sub(claimed))
	}
	t.Logf("VIP from %s to %s: on neither for %v", from, to, claimed.Sub(released))
}

func (l *procLab) watchVIP(done <-chan struct{}) <-chan netlab.AddrEvent {
	l.t.Helper()
	events := make(chan netlab.AddrEvent, 64)
	for _, id := range []string{"d1", "d2", "d3"} {
		if err := l.lab.Host(id).WatchAddr(failoverVIP, events, done); err != nil {
			l.t.Fatal(err)
		}
	}
	return events
}

func waitWithin(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, limit)
		}
	}
}

func TestVIPOnlyDirectorsFenceAFrozenLeaderAndHandOver(t *testing.T) {
	if err := netlab.Available(); err != nil {
		t.Skip(err)
	}
	lab, err := netlab.New("rlfn",
		netlab.HostSpec{Name: "c", Addr: netip.MustParsePrefix("10.99.1.9/24")},
		netlab.HostSpec{Name: "d1", Addr: netip.MustParsePrefix("10.99.1.1/24")},
		netlab.HostSpec{Name: "d2", Addr: netip.MustParsePrefix("10.99.1.2/24")},
		netlab.HostSpec{Name: "d3", Addr: netip.MustParsePrefix("10.99.1.3/24")})
	if err != nil {
		t.Fatal(err)
	}
	l := &procLab{t: t, lab: lab, dir: t.TempDir(), procs: map[string]*netlab.Proc{}}
	t.Cleanup(func() {
		lab.Close()
		if t.Failed() {
			for _, id := range []string{"d1", "d2", "d3"} {
				if b, err := os.ReadFile(filepath.Join(l.dir, id+".log")); err == nil {
					t.Logf("---- %s\n%s", id, tail(string(b), 40))
				}
			}
		}
	})
	all := []string{"d1", "d2", "d3"}
	l.start("d1", true)
	waitWithin(t, "d1 to lead", 60*time.Second, func() bool { return l.leader("d1") == "d1" })
	l.start("d2", false)
	l.start("d3", false)
	waitWithin(t, "three voters that agree on a leader", 90*time.Second, func() bool {
		st, err := l.client("d1").Status(context.Background(), false)
		return err == nil && len(st.Node.Voters) == 3 && l.leader(all...) != ""
	})
	if _, err := l.client("d2").AddVIP(context.Background(), api.VIPRequest{Addr: failoverVIP.String() + "/24"}); err != nil {
		t.Fatalf("declare the VIP: %v", err)
	}
	frozen := l.movedTo("", false, all...)

	t.Run("a leader frozen past its lease goes quiet within it and answers for nothing once it resumes", func(t *testing.T) {
		done := make(chan struct{})
		defer close(done)
		garps, err := lab.Host("c").WatchGratuitousARP(failoverVIP, done)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.procs[frozen].Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		stopped := time.Now()
		// The fence: the frozen process renews nothing, so its kernel stops answering ARP
		// for the VIP within the lease (relaxed: 500 ms), the VIP still on its interface.
		// Probed for 1.5 s: the last answer must come within 1 s, a lost probe aside.
		lastAnswered := stopped
		for time.Since(stopped) < 1500*time.Millisecond {
			sent := time.Now()
			answers, err := lab.Host("c").WhoAnswersARP(failoverVIP, 20*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			if slices.ContainsFunc(answers, func(m net.HardwareAddr) bool { return bytes.Equal(m, lab.Host(frozen).MAC) }) {
				lastAnswered = sent
			}
		}
		t.Logf("%s's kernel answered ARP for the VIP %v after SIGSTOP (lease 500 ms, probes every 20 ms)",
			frozen, lastAnswered.Sub(stopped).Round(time.Millisecond))
		if lastAnswered.Sub(stopped) > time.Second {
			t.Fatalf("%s's kernel still answered ARP for the VIP %v after SIGSTOP: no fence", frozen, lastAnswered.Sub(stopped))
		}
		if ok, err := lab.Host(frozen).Holds(failoverVIP); err != nil || !ok {
			t.Fatalf("%s no longer holds the VIP while frozen (%v): the fence should silence it, not remove it", frozen, err)
		}
		next := l.movedTo(frozen, true, others(all, frozen)...)
		answers, err := lab.Host("c").WhoAnswersARP(failoverVIP, 300*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if len(answers) != 1 || !bytes.Equal(answers[0], lab.Host(next).MAC) {
			t.Fatalf("ARP answers for the VIP while %s is frozen: from %v, want only %s's %s", frozen, answers, next, lab.Host(next).MAC)
		}
		resumed := time.Now()
		if err := l.procs[frozen].Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		waitWithin(t, frozen+" to drop the VIP after it resumed", 20*time.Second, func() bool {
			ok, err := lab.Host(frozen).Holds(failoverVIP)
			return err == nil && !ok
		})
		t.Logf("%s dropped the VIP %v after it resumed", frozen, time.Since(resumed).Round(time.Millisecond))
		for _, g := range garps() {
			if g.At.After(resumed) && bytes.Equal(g.MAC, lab.Host(frozen).MAC) {
				t.Fatalf("%s announced the VIP (gratuitous ARP) %v after it resumed, while %s leads", frozen, g.At.Sub(resumed), next)
			}
		}
		l.poke()
		if mac, _, err := lab.Host("c").Neighbour(failoverVIP); err != nil || !bytes.Equal(mac, lab.Host(next).MAC) {
			t.Fatalf("the client's entry for the VIP: %v %v, want %s's %s", mac, err, next, lab.Host(next).MAC)
		}
		answers, err = lab.Host("c").WhoAnswersARP(failoverVIP, 300*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if len(answers) != 1 || !bytes.Equal(answers[0], lab.Host(next).MAC) {
			t.Fatalf("ARP answers for the VIP from %v, want only %s's %s", answers, next, lab.Host(next).MAC)
		}
	})

	t.Run("raftlvs transfer moves the VIP without two holders", func(t *testing.T) {
		from := l.movedTo("", false, all...)
		done := make(chan struct{})
		defer close(done)
		events := l.watchVIP(done)
		code, stdout, stderr := l.cli(from, "transfer")
		if code != exitOK || !strings.Contains(stdout, "leadership transferred") {
			t.Fatalf("raftlvs transfer: exit %d: %s%s", code, stdout, stderr)
		}
		to := l.movedTo(from, false, all...)
		time.Sleep(100 * time.Millisecond) // the notifications are in
		neverOnTwo(t, events, from, to)
	})

	t.Run("SIGTERM to the leader moves the VIP without two holders", func(t *testing.T) {
		from := l.movedTo("", false, all...)
		done := make(chan struct{})
		defer close(done)
		events := l.watchVIP(done)
		if err := l.procs[from].Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		to := l.movedTo(from, false, others(all, from)...)
		if !l.procs[from].Wait(30 * time.Second) {
			t.Fatalf("%s still runs 30 s after SIGTERM", from)
		}
		time.Sleep(100 * time.Millisecond)
		neverOnTwo(t, events, from, to)
		if ok, _ := lab.Host(from).Holds(failoverVIP); ok {
			t.Fatalf("%s stopped with the VIP still on its interface", from)
		}
	})
}

// cli runs raftlvs (this binary) in the client's namespace against director id.
func (l *procLab) cli(id string, args ...string) (int, string, string) {
	self, err := os.Executable()
	if err != nil {
		l.t.Fatal(err)
	}
	out, err := l.lab.Host("c").ExecEnv([]string{asMainEnv + "=1"}, self, append([]string{"--insecure", "--api", directorIP(id).String() + ":7080"}, args...)...)
	if err != nil {
		return exitError, string(out), err.Error()
	}
	return exitOK, string(out), ""
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func others(all []string, not string) []string {
	var out []string
	for _, id := range all {
		if id != not {
			out = append(out, id)
		}
	}
	return out
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
