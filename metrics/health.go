package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/raftlvs/raftlvs/healthd"
)

// probeLabels name one probe: its type, where it checks, and an ordinal among the probes
// of that type to that address (two services may check one address differently).
var probeLabels = []string{"type", "address", "port", "probe"}

var (
	checkRuns     = desc("healthcheck_runs_total", "Health checks this director completed.")
	checkOverruns = desc("healthcheck_overruns_total", "Runs skipped because the previous run of the probe had not finished.")
	checkBehind   = desc("healthcheck_behind_total", "Runs skipped because the scheduler was a whole interval late.")
	checkProbes   = desc("healthcheck_probes", "Distinct probes scheduled on this director (identical checks share one).")
	checkQueued   = desc("healthcheck_queued", "Probes due and waiting for a free slot.")
	checkRunning  = desc("healthcheck_running", "Probes in flight.")

	probeUp       = desc("healthcheck_up", "1 if the probe's last run succeeded.", probeLabels...)
	probeDuration = desc("healthcheck_duration_seconds", "How long the probe's last run took.", probeLabels...)
	probeLastRun  = desc("healthcheck_last_run_timestamp_seconds", "When the probe's last completed run started: time() minus it is the checker's age; a stuck checker shows as a growing age.", probeLabels...)
	probeRuns     = desc("healthcheck_probe_runs_total", "Completed runs of the probe.", probeLabels...)
	probeStuck    = desc("healthcheck_probe_running_seconds", "How long the probe's current run has lasted (0 when it is not running).", probeLabels...)
)

// collectChecks sends this director's health-check scheduler figures.
func collectChecks(ch chan<- prometheus.Metric, st healthd.Status, now time.Time) {
	ch <- counter(checkRuns, float64(st.Stats.Runs))
	ch <- counter(checkOverruns, float64(st.Stats.Overruns))
	ch <- counter(checkBehind, float64(st.Stats.Behind))
	ch <- gauge(checkProbes, float64(st.Stats.Probes))
	ch <- gauge(checkQueued, float64(st.Stats.Queued))
	ch <- gauge(checkRunning, float64(st.Stats.Running))
	ordinal := map[[3]string]int{}
	for _, p := range st.Probes {
		k := [3]string{string(p.Type), p.To.Addr().Unmap().String(), u16(p.To.Port())}
		n := ordinal[k]
		ordinal[k] = n + 1
		l := []string{k[0], k[1], k[2], strconv.Itoa(n)}
		ch <- counter(probeRuns, float64(p.Runs), l...)
		running := 0.0
		if !p.RunningSince.IsZero() {
			running = max(now.Sub(p.RunningSince).Seconds(), 0)
		}
		ch <- gauge(probeStuck, running, l...)
		if p.LastRun.IsZero() {
			continue // not run yet: no verdict, no age
		}
		ch <- gauge(probeUp, boolValue(p.Up), l...)
		ch <- gauge(probeDuration, p.Latency.Seconds(), l...)
		ch <- gauge(probeLastRun, float64(p.LastRun.UnixMilli())/1e3, l...)
	}
}
