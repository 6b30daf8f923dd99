//go:build linux

package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// row is one series of trials.
type row struct {
	system, settings, event string
	samples                 []time.Duration // the client's gap in each trial
	margins                 []time.Duration // partitions: VIP claim − release
	released                []time.Duration // partitions: the old leader's release, from the cut
}

// quantile is the nearest-rank quantile of sorted samples.
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

type summary struct{ min, median, p99, max time.Duration }

func summarise(samples []time.Duration) summary {
	s := slices.Clone(samples)
	slices.Sort(s)
	return summary{s[0], quantile(s, 0.5), quantile(s, 0.99), s[len(s)-1]}
}

// baseline is the keepalived series a raftlvs series is compared with: crashes with
// crashes (default settings with VRRPv2 advert_int 1, the fast profile with VRRPv3
// advert_int 0.1), planned handovers with keepalived's graceful stop.
func baseline(r row, rows []row) (row, bool) {
	if r.event == "raft partition" {
		return row{}, false // keepalived has no such event: VRRP has no quorum to lose
	}
	version := "VRRPv2"
	if r.settings == "fast" {
		version = "VRRPv3"
	}
	event := "stop"
	if r.event == "crash" {
		event = "crash"
	}
	for _, k := range rows {
		if k.system == "keepalived "+version && k.event == event {
			return k, true
		}
	}
	return row{}, false
}

func ms(d time.Duration) string {
	if d >= 10*time.Second {
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	return fmt.Sprintf("%d ms", d.Round(time.Millisecond).Milliseconds())
}

var eventNames = map[string]string{
	"crash": "crash (link down + kill -9)", "stop": "graceful stop (SIGTERM)", "transfer": "raftlvs transfer",
	"SIGTERM": "SIGTERM to the leader", "leave": "raftlvs leave (leader)", "raft partition": "Raft cut off the leader",
}

func printTable(w io.Writer, rows []row, trials int, took time.Duration) {
	fmt.Fprintf(w, "\nClient-visible gap: from the first new TCP connection to the VIP that failed to the first that\n")
	fmt.Fprintf(w, "succeeded after the last failure (one attempt every 10 ms; 0 = no attempt failed).\n\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "system\tsettings\tevent\tn\tmin\tmedian\tp99\tmax\tmedian vs keepalived\t")
	for _, r := range rows {
		s := summarise(r.samples)
		ratio := "-"
		if k, ok := baseline(r, rows); ok && strings.HasPrefix(r.system, "raftlvs") {
			km := summarise(k.samples).median
			ratio = fmt.Sprintf("%.2f× %s %s", float64(s.median)/float64(km), strings.TrimPrefix(k.system, "keepalived "), k.event)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t\n", r.system, r.settings, eventNames[r.event], len(r.samples),
			ms(s.min), ms(s.median), ms(s.p99), ms(s.max), ratio)
	}
	tw.Flush()
	for _, r := range rows {
		if len(r.margins) == 0 {
			continue
		}
		m, rel := summarise(r.margins), summarise(r.released)
		fmt.Fprintf(w, "\n%s %s, Raft cut off the leader (client still reaches it), %d trials: the leader, without\n"+
			"quorum, dropped the VIP %s / %s / %s (min / median / max) after the cut; the VIP was on no director between\n"+
			"that release and the new leader's claim for %s / %s / %s (negative: on two at once).\n",
			r.system, r.settings, len(r.margins), ms(rel.min), ms(rel.median), ms(rel.max), ms(m.min), ms(m.median), ms(m.max))
	}
	fmt.Fprintf(w, "\n%d trials per event; the whole bench took %s.\n", trials, took.Round(time.Second))
}
