//go:build linux

// Command failover is the side-by-side failover bench (make bench-failover): in network
// namespaces it creates on this host, three directors and a client on one bridge; the
// client opens a new TCP connection to the VIP every 10 ms, to a tiny server on every
// director; the same topology, probe and analysis measure keepalived (VRRPv2 advert_int
// 1, VRRPv3 advert_int 0.1) and raftlvs VIP-only directors (default and fast timing
// profiles) through crashes (link down + kill -9 of the VIP holder) and planned
// handovers, and print one table. README.md in this directory says how to read it.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) > 2 {
		switch os.Args[1] {
		case "serve":
			log.Fatal(runServer(os.Args[2]))
		case "probe":
			log.Fatal(runProbe(os.Args[2]))
		}
	}
	bin := flag.String("bin", "bin/raftlvs", "the raftlvs binary (make build)")
	trials := flag.Int("trials", 20, "trials of each event")
	partitions := flag.Int("partitions", 10, "partition trials per raftlvs profile (the lease-wait measurement)")
	systems := flag.String("systems", "vrrp2,vrrp3,default,fast", "what to measure, in order")
	dir := flag.String("dir", "", "where logs and data go (default: a new temporary directory)")
	flag.Parse()
	if err := run(*bin, *trials, *partitions, strings.Split(*systems, ","), *dir); err != nil {
		fmt.Fprintln(os.Stderr, "bench-failover:", err)
		os.Exit(1)
	}
}

func run(bin string, trials, partitions int, systems []string, dir string) error {
	if _, err := exec.LookPath("keepalived"); err != nil && contains(systems, "vrrp") {
		return fmt.Errorf("keepalived is not installed (make bench-failover installs Debian's package)")
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("raftlvs binary: %w (make build)", err)
	}
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "bench-failover-"); err != nil {
			return err
		}
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	logf("logs and data in %s", dir)
	// keepalived's VRRP child outlives a kill -9 of its group for a moment; as the
	// processes' subreaper the bench reaps them at the end rather than leave zombies.
	unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	defer reapOrphans()
	b, err := newBench(dir)
	if err != nil {
		return err
	}
	// An interrupt still deletes the namespaces and what runs in them.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() { <-sig; b.lab.Close(); os.Exit(130) }()
	defer b.lab.Close()
	if err := b.startProbe(); err != nil {
		return err
	}
	start := time.Now()
	var rows []row
	for _, s := range systems {
		got, err := measureSystem(b, s, bin, trials, partitions, logf)
		if err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
		rows = append(rows, got...)
	}
	printTable(os.Stdout, rows, trials, time.Since(start))
	return nil
}

// reapOrphans waits for every child left, reparented to the bench.
func reapOrphans() {
	for {
		var ws unix.WaitStatus
		if pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil); pid <= 0 || err != nil {
			return
		}
	}
}

func contains(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

// measureSystem sets one system up, runs its trials and tears it down.
func measureSystem(b *bench, system, bin string, trials, partitions int, logf func(string, ...any)) ([]row, error) {
	var rows []row
	series := func(sys, settings, event string, n int, trial func() (time.Duration, error)) error {
		r := row{system: sys, settings: settings, event: event}
		for i := range n {
			g, err := trial()
			if err != nil {
				return fmt.Errorf("%s trial %d: %w", event, i+1, err)
			}
			logf("%s %s %s %d/%d: %v", sys, settings, event, i+1, n, g)
			r.samples = append(r.samples, g)
		}
		rows = append(rows, r)
		return nil
	}
	switch system {
	case "vrrp2", "vrrp3":
		k := &keepalivedRun{b: b, version: 2, advert: "1", logf: logf}
		if system == "vrrp3" {
			k.version, k.advert = 3, "0.1"
		}
		logf("setting up keepalived %s", k.name())
		if err := k.setUp(); err != nil {
			return nil, err
		}
		defer k.tearDown()
		sys, settings := fmt.Sprintf("keepalived VRRPv%d", k.version), "advert_int "+k.advert
		for _, ev := range []string{"crash", "stop"} {
			if err := series(sys, settings, ev, trials, func() (time.Duration, error) { return k.trial(ev) }); err != nil {
				return nil, err
			}
		}
	case "default", "fast", "relaxed":
		r := &raftlvsRun{b: b, bin: bin, profile: system, logf: logf}
		logf("setting up raftlvs, timing profile %s", system)
		if err := r.setUp(); err != nil {
			return nil, err
		}
		defer r.tearDown()
		sys := "raftlvs --vip-only"
		for _, ev := range []string{"crash", "transfer", "SIGTERM", "leave"} {
			if err := series(sys, system, ev, trials, func() (time.Duration, error) { return r.trial(ev) }); err != nil {
				return nil, err
			}
		}
		p := row{system: sys, settings: system, event: "raft partition"}
		for i := range partitions {
			g, released, margin, err := r.partitionTrial()
			if err != nil {
				return nil, fmt.Errorf("partition trial %d: %w", i+1, err)
			}
			logf("%s %s partition %d/%d: gap %v, VIP on no director for %v", sys, system, i+1, partitions, g, margin)
			p.samples = append(p.samples, g)
			p.margins = append(p.margins, margin)
			p.released = append(p.released, released)
		}
		if partitions > 0 {
			rows = append(rows, p)
		}
	default:
		return nil, fmt.Errorf("unknown system %q (vrrp2, vrrp3, default, fast, relaxed)", system)
	}
	return rows, nil
}
