package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/fsm"
)

func newHealthCmd() *cobra.Command {
	var checks bool
	var output string
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Show each director's view of every real server, and what the leader decided",
		Long: `Show, for every checked real server, the verdict the cluster committed and each director's
own view of it, as the leader holds them (the leader marks a real server down only when a
majority of the directors that reported recently see it down). With --checks, the answering
director's own probes instead: last and next run, latency, the reason, and whether one is stuck.`,
		Args: exactArgs(0, "no arguments"),
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return usagef("-o %q: want text or json", output)
			}
			c := clientFor(cmd)
			if checks {
				hc, err := c.HealthChecks(ctxOf(cmd))
				if err != nil {
					return fmt.Errorf("health checks: %w", err)
				}
				if output == "json" {
					return writeJSONOut(cmd.OutOrStdout(), hc)
				}
				return renderChecks(cmd.OutOrStdout(), hc)
			}
			views, err := c.HealthViews(ctxOf(cmd))
			if err != nil {
				return fmt.Errorf("health views: %w", err)
			}
			if output == "json" {
				return writeJSONOut(cmd.OutOrStdout(), views)
			}
			svcs, err := c.Services(ctxOf(cmd))
			if err != nil {
				return fmt.Errorf("health views: %w", err)
			}
			return renderViews(cmd.OutOrStdout(), svcs, views)
		}),
	}
	cmd.Flags().BoolVar(&checks, "checks", false, "the answering director's own probes")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}

func writeJSONOut(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// renderViews prints one line per checked real server: the committed verdict, then each
// director's, oldest report age last.
func renderViews(w io.Writer, svcs []api.ServiceInfo, hv *api.HealthViews) error {
	byKey := map[fsm.RSKey]map[string]api.HealthVerdict{}
	var directors []string
	for _, v := range hv.Views {
		directors = append(directors, v.Director)
		for _, s := range v.Servers {
			if byKey[s.Key] == nil {
				byKey[s.Key] = map[string]api.HealthVerdict{}
			}
			byKey[s.Key][v.Director] = s
		}
	}
	slices.Sort(directors)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "SERVICE\tREAL SERVER\tCLUSTER\t%s\n", strings.Join(directors, "\t"))
	for _, svc := range svcs {
		for _, rs := range svc.RealServers {
			seen, checked := byKey[rs.Key()]
			if !checked && fsm.EffectiveCheck(&svc.Service, &rs) == nil {
				continue
			}
			cells := []string{svc.Name, netip.AddrPortFrom(rs.Addr, rs.Port).String(), string(rs.Health)}
			for _, d := range directors {
				v, ok := seen[d]
				switch {
				case !ok:
					cells = append(cells, "-")
				case v.Reason != "":
					cells = append(cells, fmt.Sprintf("%s (%s)", v.Health, v.Reason))
				default:
					cells = append(cells, string(v.Health))
				}
			}
			fmt.Fprintln(tw, strings.Join(cells, "\t"))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "views held by the leader %s:", hv.Leader)
	for _, v := range hv.Views {
		fmt.Fprintf(w, " %s %s ago;", v.Director, hv.At.Sub(v.At).Round(100*time.Millisecond))
	}
	fmt.Fprintln(w)
	for _, warn := range hv.Warnings {
		fmt.Fprintf(w, "held back: %s\n", warn.Message)
	}
	return nil
}

// renderChecks prints a director's probes, one line each.
func renderChecks(w io.Writer, hc *api.HealthChecks) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROBE\tTYPE\tLAST\tLATENCY\tIN A ROW\tLAST RUN\tNEXT RUN\tREAL SERVERS")
	for _, p := range hc.Probes {
		last := "down"
		if p.Up {
			last = "up"
		}
		if p.Reason != "" {
			last += " (" + p.Reason + ")"
		}
		if p.Stuck {
			last += " STUCK since " + p.RunningSince.UTC().Format(time.TimeOnly)
		}
		streak := fmt.Sprintf("%d ok", p.Successes)
		if p.Failures > 0 {
			streak = fmt.Sprintf("%d failed", p.Failures)
		}
		lastRun := "never"
		if !p.LastRun.IsZero() {
			lastRun = hc.At.Sub(p.LastRun).Round(10*time.Millisecond).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f ms\t%s\t%s\tin %s\t%d\n", p.To, p.Type, last, p.LatencyMS, streak, lastRun,
			p.NextRun.Sub(hc.At).Round(10*time.Millisecond), len(p.Servers))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	s := hc.Stats
	_, err := fmt.Fprintf(w, "director %s: %d probes for %d real servers, %d running, %d queued, %d runs, %d overruns, %d behind\n",
		hc.Director, s.Probes, s.Servers, s.Running, s.Queued, s.Runs, s.Overruns, s.Behind)
	return err
}
