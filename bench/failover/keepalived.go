//go:build linux

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/raftlvs/raftlvs/internal/netlab"
)

// keepalivedRun is three keepalived VRRP instances (--vrrp only: no checkers, no IPVS)
// for the same VIP. Priorities are keepalived's usual master/backup pair plus a third:
// d1 150 is the master, d2 100 (keepalived's default priority) takes over, d3 50. All
// start as BACKUP with preemption on, so the restarted d1 takes the VIP back between
// trials and every trial measures the same hand-off, d1 to d2.
type keepalivedRun struct {
	b        *bench
	version  int    // VRRP 2 or 3
	advert   string // advert_int
	procs    map[string]*netlab.Proc
	priority map[string]int
	logf     func(string, ...any)
}

func (k *keepalivedRun) name() string { return fmt.Sprintf("vrrp%d-%s", k.version, k.advert) }

func (k *keepalivedRun) conf(d string) string {
	return fmt.Sprintf(`global_defs {
	router_id %s
	vrrp_version %d
	script_user root
}
vrrp_instance bench {
	state BACKUP
	interface eth0
	virtual_router_id 42
	priority %d
	advert_int %s
	virtual_ipaddress {
		%s dev eth0
	}
}
`, d, k.version, k.priority[d], k.advert, vipPrefix)
}

func (k *keepalivedRun) start(d string) error {
	base := filepath.Join(k.b.dir, "keepalived-"+k.name()+"-"+d)
	if err := os.WriteFile(base+".conf", []byte(k.conf(d)), 0o644); err != nil {
		return err
	}
	// A killed instance's VRRP child may linger a moment (a zombie until reaped), and
	// keepalived refuses to start while its pid file names a live process.
	os.Remove(base + ".pid")
	os.Remove(base + "-vrrp.pid")
	p, err := k.b.lab.Host(d).Start(base+".log", nil, "keepalived", "--dont-fork", "--log-console", "--log-detail",
		"--vrrp", "--use-file", base+".conf", "--pid", base+".pid", "--vrrp_pid", base+"-vrrp.pid")
	if err != nil {
		return err
	}
	k.procs[d] = p
	return nil
}

func (k *keepalivedRun) setUp() error {
	k.procs = map[string]*netlab.Proc{}
	k.priority = map[string]int{"d1": 150, "d2": 100, "d3": 50}
	for _, d := range directors {
		if err := k.start(d); err != nil {
			return err
		}
	}
	return k.settle()
}

// settle waits for d1, the master, to hold the VIP alone.
func (k *keepalivedRun) settle() error {
	if err := waitFor("d1 to hold the VIP alone", 30*time.Second, func() bool {
		h := k.b.holders()
		return len(h) == 1 && h[0] == "d1"
	}); err != nil {
		k.logf("VIP holders %v", k.b.holders())
		return err
	}
	if err := k.b.steady(k.logf); err != nil {
		return err
	}
	time.Sleep(time.Second)
	return nil
}

func (k *keepalivedRun) tearDown() {
	for _, p := range k.procs {
		p.Kill()
	}
	for _, d := range directors {
		if ok, _ := k.b.lab.Host(d).Holds(vipAddr); ok {
			k.b.lab.Host(d).DelAddr(vipPrefix)
		}
	}
}

// trial crashes or stops the master, d1, and returns the client's gap.
func (k *keepalivedRun) trial(event string) (time.Duration, error) {
	if h := k.b.holders(); len(h) != 1 || h[0] != "d1" {
		return 0, fmt.Errorf("not steady before the trial: VIP on %v", h)
	}
	h := k.b.lab.Host("d1")
	randomPhase()
	t0 := time.Now()
	switch event {
	case "crash":
		if err := h.LinkDown(); err != nil {
			return 0, err
		}
		k.procs["d1"].Kill() // the parent and its VRRP child at once
	case "stop":
		// A graceful stop: the master sends a priority-0 advert, the backup takes over
		// after its skew time alone (anchors-keepalived §2.1).
		if err := k.procs["d1"].Signal(syscall.SIGTERM); err != nil {
			return 0, err
		}
	default:
		return 0, fmt.Errorf("unknown event %q", event)
	}
	g, err := k.b.measure(t0)
	if err != nil {
		return 0, err
	}
	if event == "crash" {
		if err := h.LinkUp(); err != nil {
			return 0, err
		}
	} else if !k.procs["d1"].Wait(10 * time.Second) {
		return 0, fmt.Errorf("keepalived did not stop within 10 s of SIGTERM")
	}
	if err := k.start("d1"); err != nil {
		return 0, err
	}
	return g, k.settle()
}
