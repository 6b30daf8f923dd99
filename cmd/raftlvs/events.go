package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftlvs/raftlvs/api"
)

// eventsWait is how long one long poll of --follow waits for the next event;
// eventsRetry the pause after no director answered.
const (
	eventsWait  = 30 * time.Second
	eventsRetry = 2 * time.Second
)

func newEventsCmd() *cobra.Command {
	var follow bool
	var last int
	var output string
	cmd := &cobra.Command{
		Use:   "events [--follow] [-n N] [-o text|json]",
		Short: "Show the recent events of a director: leader changes, VIPs, health transitions, drains, drift repaired",
		Long: `Show the timeline of the director that answers (GET /v1/events): leader changes and
unreachable voters, the VIPs it claimed and released, committed health transitions and
drains, IPVS drift it repaired. Each director keeps the last few thousand events in memory,
as it saw them. With --follow, wait for more and print them as they come until interrupted;
if that director stops answering, go on with the next one given to --api, from the time of
the last event printed.`,
		Args: exactArgs(0, "no arguments"),
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return usagef("-o %q: want text or json", output)
			}
			if last < 0 {
				return usagef("-n %d: want 0 or more", last)
			}
			ctx := ctxOf(cmd)
			if follow {
				var stop context.CancelFunc
				ctx, stop = signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
				defer stop()
			}
			c := clientFor(cmd)
			list, err := c.Events(ctx, 0, 0, last)
			if err != nil {
				return fmt.Errorf("events: %w", err)
			}
			w := cmd.OutOrStdout()
			for _, e := range list.Events {
				if err := printEvent(w, e, output); err != nil {
					return err
				}
			}
			if !follow {
				return nil
			}
			return followEvents(ctx, c, list, w, cmd.ErrOrStderr(), output)
		}),
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "wait for new events and print them as they come, until interrupted")
	cmd.Flags().IntVarP(&last, "lines", "n", 20, "how many of the recent events to print first (0: all the director keeps)")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text, or json (one object a line)")
	return cmd
}

// followEvents long-polls for the events after list's until ctx ends. A change of
// timeline (another director answered, or the same one restarted) is told on errw; of
// the new timeline only the events after the last one printed are printed.
func followEvents(ctx context.Context, c *api.Client, list *api.EventList, w, errw io.Writer, output string) error {
	var seen time.Time
	if n := len(list.Events); n > 0 {
		seen = list.Events[n-1].At
	}
	failing := false
	for ctx.Err() == nil {
		next, err := c.Events(ctx, list.Last, eventsWait, 0)
		if ctx.Err() != nil {
			break
		}
		if err != nil {
			if !failing {
				fmt.Fprintf(errw, "raftlvs: no director answers (%v); trying again every %s\n", err, eventsRetry)
				failing = true
			}
			select {
			case <-ctx.Done():
			case <-time.After(eventsRetry):
			}
			continue
		}
		failing = false
		switched := next.Director != list.Director || next.Log != list.Log
		if switched {
			fmt.Fprintf(errw, "raftlvs: now following the events of %s\n", next.Director)
		}
		for _, e := range next.Events {
			if switched && !e.At.After(seen) {
				continue // the new timeline's past, printed already from the old one
			}
			if err := printEvent(w, e, output); err != nil {
				return err
			}
			seen = e.At
		}
		list = next
	}
	return nil
}

func printEvent(w io.Writer, e api.Event, output string) error {
	if output == "json" {
		return json.NewEncoder(w).Encode(e)
	}
	_, err := fmt.Fprintf(w, "%s  %-8s %-6s %s\n", e.At.Local().Format("2006-01-02 15:04:05.000"), e.Director, e.Kind, e.Message)
	return err
}
