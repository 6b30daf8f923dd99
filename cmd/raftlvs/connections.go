package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/raftlvs/raftlvs/api"
)

// connectionsFlags are status --connections's: the answering director's IPVS
// connection table, as ipvsadm -Lnc lists it.
type connectionsFlags struct {
	on    bool
	limit int
}

func (f *connectionsFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVarP(&f.on, "connections", "c", false, "list the IPVS connections of the director asked (the first of --api), as ipvsadm -Lnc")
	cmd.Flags().IntVar(&f.limit, "limit", api.DefaultConnections, fmt.Sprintf("with --connections: list at most this many (1..%d)", api.MaxConnections))
	cmd.MarkFlagsMutuallyExclusive("connections", "stats")
	cmd.MarkFlagsMutuallyExclusive("connections", "rate")
}

func (f *connectionsFlags) run(cmd *cobra.Command, output string) error {
	if f.limit < 1 || f.limit > api.MaxConnections {
		return usagef("--limit %d: want 1..%d", f.limit, api.MaxConnections)
	}
	c := clientFor(cmd)
	list, err := c.Connections(ctxOf(cmd), f.limit)
	if err != nil {
		return fmt.Errorf("status --connections: %w", err)
	}
	if output == "json" {
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	return renderConnections(cmd.OutOrStdout(), list)
}

// renderConnections prints the table as ipvsadm -Lnc does, after a line naming the
// director and, when the list is cut, how much is missing.
func renderConnections(w io.Writer, list *api.ConnectionList) error {
	var b strings.Builder
	fmt.Fprintf(&b, "IPVS connection entries of director %s", list.Director)
	if len(list.Connections) < list.Total {
		fmt.Fprintf(&b, " (the first %d of %d; --limit for more)", len(list.Connections), list.Total)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "pro expire %-11s %-18s %-18s %s\n", "state", "source", "virtual", "destination")
	for _, c := range list.Connections {
		expire := fmt.Sprintf("%02d:%02d", c.ExpiresS/60, c.ExpiresS%60)
		line := fmt.Sprintf("%-3s %-6s %-11s %-18s %-18s %s", c.Protocol, expire, c.State, c.Client, c.Virtual, c.Destination)
		if c.PEName != "" {
			line += " " + c.PEName + " " + c.PEData
		}
		b.WriteString(line + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
