package metrics

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/raftlvs/raftlvs/fsm"
	"github.com/raftlvs/raftlvs/healthd"
)

// A real scheduler checking one listening and one closed port on loopback.
func TestHealthCheckCollectorReportsTheSchedulersProbes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().(*net.TCPAddr).AddrPort()
	closed.Close()
	up := ln.Addr().(*net.TCPAddr).AddrPort()
	check := &fsm.HealthCheck{Type: fsm.CheckTCP, IntervalMS: 100, TimeoutMS: 500}
	targets := []healthd.Target{
		{Key: fsm.RSKey{Service: "web", Addr: up.Addr(), Port: up.Port()}, To: up, Check: check, Health: fsm.HealthUnknown},
		{Key: fsm.RSKey{Service: "web", Addr: closedAddr.Addr(), Port: closedAddr.Port()}, To: closedAddr, Check: check, Health: fsm.HealthUnknown},
	}
	s, err := healthd.NewScheduler(healthd.SchedulerConfig{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	s.Set(targets)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ran := 0
		for _, p := range s.Status().Probes {
			if p.Runs > 0 {
				ran++
			}
		}
		if ran == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the probes did not run")
		}
		time.Sleep(20 * time.Millisecond)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(&checkCollector{s})
	lbl := func(to netip.AddrPort) string {
		return `{address="` + to.Addr().String() + `",port="` + u16(to.Port()) + `",probe="0",type="tcp"}`
	}
	want := "# HELP raftlvs_healthcheck_up 1 if the probe's last run succeeded.\n# TYPE raftlvs_healthcheck_up gauge\n" +
		"raftlvs_healthcheck_up" + lbl(up) + " 1\n" + "raftlvs_healthcheck_up" + lbl(closedAddr) + " 0\n"
	// The order of the series is the text format's (sorted by labels).
	if up.Port() > closedAddr.Port() {
		want = "# HELP raftlvs_healthcheck_up 1 if the probe's last run succeeded.\n# TYPE raftlvs_healthcheck_up gauge\n" +
			"raftlvs_healthcheck_up" + lbl(closedAddr) + " 0\n" + "raftlvs_healthcheck_up" + lbl(up) + " 1\n"
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "raftlvs_healthcheck_up"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg, "raftlvs_healthcheck_last_run_timestamp_seconds", "raftlvs_healthcheck_duration_seconds"); err != nil || n != 4 {
		t.Errorf("last-run and duration series: %d (%v), want 2 each", n, err)
	}
	probes := "# HELP raftlvs_healthcheck_probes Distinct probes scheduled on this director (identical checks share one).\n" +
		"# TYPE raftlvs_healthcheck_probes gauge\nraftlvs_healthcheck_probes 2\n"
	if err := testutil.GatherAndCompare(reg, strings.NewReader(probes), "raftlvs_healthcheck_probes"); err != nil {
		t.Error(err)
	}
}

// checkCollector is the director collector's health part alone.
type checkCollector struct{ c Checks }

func (c *checkCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{checkRuns, checkOverruns, checkBehind, checkProbes, checkQueued, checkRunning,
		probeUp, probeDuration, probeLastRun, probeRuns, probeStuck} {
		ch <- d
	}
}

func (c *checkCollector) Collect(ch chan<- prometheus.Metric) {
	collectChecks(ch, c.c.Status(), time.Now())
}
