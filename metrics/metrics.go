// Package metrics exports a director's and an agent's figures in the Prometheus format.
// The collectors read, at each scrape, the snapshots that the packages owning the numbers
// publish (cluster.Node.RaftStats, director.Director's status and counters, healthd's
// Scheduler.Status, the registrar's Counters, the events watcher's Transitions); none of
// those packages imports Prometheus. The IPVS series reuse node_exporter's label names so
// that its dashboards carry over. See DESIGN.md beside this file for the names.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// namespace prefixes every raftlvs series.
const namespace = "raftlvs"

// newRegistry is a registry with the build info and the Go and process collectors.
func newRegistry(role string) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo(role),
	)
	return reg
}

// Handler serves g (a registry, a Director) as /metrics, with the errors of a collector
// logged in the answer rather than failing the scrape. A scrape of a large table costs
// hundreds of megabytes: beyond MaxScrapes at once, a scrape is answered 503.
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError, MaxRequestsInFlight: MaxScrapes})
}

// MaxScrapes is how many scrapes one director answers at once: an HA pair of Prometheus
// servers, and one more.
const MaxScrapes = 3

// Serve answers GET /metrics from reg on ln (an agent's metrics port of its own) until
// ctx ends.
func Serve(ctx context.Context, ln net.Listener, reg prometheus.Gatherer) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", Handler(reg))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve metrics on %s: %w", ln.Addr(), err)
	}
	return nil
}

// buildInfo is raftlvs_build_info{version, goversion, role} 1.
func buildInfo(role string) prometheus.Collector {
	version, goVersion := "(devel)", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		version, goVersion = bi.Main.Version, bi.GoVersion
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && version == "(devel)" {
				version = s.Value
			}
		}
	}
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace:   namespace,
		Name:        "build_info",
		Help:        "Always 1; the labels say which raftlvs runs and in which role (director or agent).",
		ConstLabels: prometheus.Labels{"version": version, "goversion": goVersion, "role": role},
	}, func() float64 { return 1 })
}

// desc builds a raftlvs_ series description.
func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(namespace+"_"+name, help, labels, nil)
}

func gauge(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func counter(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func u16(v uint16) string { return strconv.FormatUint(uint64(v), 10) }
func u32(v uint32) string { return strconv.FormatUint(uint64(v), 10) }
