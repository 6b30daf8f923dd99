package main

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/dialect/ipvsadm"
	"github.com/raftlvs/raftlvs/fsm"
)

func newStatusCmd() *cobra.Command {
	var stats, rate, exact bool
	var output string
	var conns connectionsFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the cluster and the IPVS table, like ipvsadm -Ln",
		Args:  exactArgs(0, "no arguments"),
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			if stats && rate {
				return usagef("--stats and --rate exclude each other")
			}
			if output != "" && output != "json" && output != "text" {
				return usagef("-o %q: want text or json", output)
			}
			if conns.on {
				return conns.run(cmd, output)
			}
			// The text shows ActiveConn and InActConn as ipvsadm -Ln does; JSON has the
			// counters with --stats or --rate only (scripts poll it).
			c := clientFor(cmd)
			counters := output != "json" || stats || rate
			st, err := c.Status(ctxOf(cmd), counters)
			if errors.Is(err, api.ErrUnconfirmed) {
				// No leader to confirm with: what a director holds is what an operator
				// needs to see then, said to be unconfirmed.
				fmt.Fprintf(cmd.ErrOrStderr(), "raftlvs: warning: %v\nraftlvs: warning: showing the answering director's replica, which may miss the latest writes\n", err)
				c.Consistent = false
				st, err = c.Status(ctxOf(cmd), counters)
			}
			if err != nil {
				return fmt.Errorf("status: %w", err)
			}
			c.WithLeadersView(ctxOf(cmd), st)
			if len(st.Directors) > 0 && !slices.ContainsFunc(st.Directors, func(d fsm.Director) bool { return !d.Witness }) {
				fmt.Fprintln(cmd.ErrOrStderr(), "raftlvs: warning: every director of this cluster is a witness: none holds the VIPs or programs IPVS; start one without --witness")
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			mode := ipvsadm.ListPlain
			switch {
			case stats:
				mode = ipvsadm.ListStats
			case rate:
				mode = ipvsadm.ListRate
			}
			if mode != ipvsadm.ListPlain && (st.DataPlane == nil || st.DataPlane.Services == nil) {
				return fmt.Errorf("this director reports no IPVS counters")
			}
			return renderStatus(cmd.OutOrStdout(), st, mode, exact)
		}),
	}
	cmd.Flags().BoolVar(&stats, "stats", false, "show the counters (Conns, InPkts, OutPkts, InBytes, OutBytes)")
	cmd.Flags().BoolVar(&rate, "rate", false, "show the rates (CPS, InPPS, OutPPS, InBPS, OutBPS)")
	cmd.Flags().BoolVar(&exact, "exact", false, "print exact numbers, without K/M/G rounding")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text (like ipvsadm -Ln, it reads each service's counters: slow on a large table) or json (the raw status; counters only with --stats or --rate)")
	cmd.MarkFlagsMutuallyExclusive("stats", "rate")
	conns.register(cmd)
	return cmd
}

func renderStatus(w io.Writer, st *api.StatusResponse, mode ipvsadm.ListMode, exact bool) error {
	var b strings.Builder
	renderCluster(&b, st)
	b.WriteString("\n")
	var counters []api.ServiceCounters
	if st.DataPlane != nil {
		counters = st.DataPlane.Services
	}
	if err := ipvsadm.List(&b, st.Services, counters, mode, exact); err != nil {
		return err
	}
	if mode == ipvsadm.ListPlain && len(st.Services) > 0 {
		b.WriteString(healthLegend)
	}
	if dp := st.DataPlane; dp != nil {
		b.WriteString("\nVIPs held:")
		if len(dp.VIPs) == 0 {
			b.WriteString(" none")
		}
		b.WriteString("\n")
		for _, v := range dp.VIPs {
			fmt.Fprintf(&b, "  %s on %s\n", v.Addr, v.Interface)
		}
		b.WriteString("Sync daemons:")
		if len(dp.SyncDaemons) == 0 {
			b.WriteString(" none")
		}
		b.WriteString("\n")
		for _, d := range dp.SyncDaemons {
			// As ipvsadm -L --daemon prints them.
			fmt.Fprintf(&b, "  %s sync daemon (mcast=%s, syncid=%d)\n", d.Role, d.Interface, d.SyncID)
		}
	}
	renderAgents(&b, st.Agents)
	_, err := io.WriteString(w, b.String())
	return err
}

// renderAgents lists the real-server agents the director sees in the gossip pool.
func renderAgents(b *strings.Builder, agents []api.Agent) {
	if agents == nil {
		return
	}
	b.WriteString("Agents:")
	if len(agents) == 0 {
		b.WriteString(" none")
	}
	b.WriteString("\n")
	for _, a := range agents {
		var serves []string
		for _, sp := range a.Services {
			s := sp.Service
			if sp.Port != 0 {
				s += fmt.Sprintf(":%d", sp.Port)
			}
			serves = append(serves, fmt.Sprintf("%s@%d", s, sp.Weight))
		}
		state := a.State
		if a.Draining && state == "alive" {
			state = "draining"
		}
		line := fmt.Sprintf("  %-16s %-8s %-16s %s", a.ID, state, a.Addr, strings.Join(serves, " "))
		b.WriteString(strings.TrimRight(line, " ") + "\n")
		if a.Error != "" {
			fmt.Fprintf(b, "  %-16s unreadable metadata: %s\n", "", a.Error)
		}
	}
}

// healthLegend explains the State column of the table.
const healthLegend = "State: up = checks pass; down = checks fail, out of rotation (since when, and why);\n" +
	"       unknown = not checked (yet), in rotation; draining = weight 0 in IPVS, its connections finish\n"

func renderCluster(b *strings.Builder, st *api.StatusResponse) {
	n := st.Node
	clusterID := st.ClusterID
	if clusterID == "" {
		clusterID = "(not bootstrapped)"
	}
	fmt.Fprintf(b, "Cluster %s, state version %d\n", clusterID, st.Version)
	fmt.Fprintf(b, "Node    %s: %s, term %d, commit %d, applied %d\n", n.NodeID, n.State, n.Term, n.CommitIndex, n.AppliedIndex)
	leader := n.LeaderID
	if leader == "" {
		leader = "none known"
	}
	fmt.Fprintf(b, "Leader  %s\n", leader)
	if n.Error != "" {
		fmt.Fprintf(b, "Voters  unknown: %s\n", n.Error)
		return
	}
	voters := slices.Clone(n.Voters)
	slices.SortFunc(voters, func(a, b api.Voter) int { return cmp.Compare(a.ID, b.ID) })
	for i, v := range voters {
		label := "        "
		if i == 0 {
			label = "Voters  "
		}
		role := strings.ToLower(v.Suffrage)
		switch {
		case v.ID == n.LeaderID:
			role = "leader"
		case role == "voter" && n.LeaderID != "":
			role = "follower"
		}
		apiAddr := v.APIAddr
		if apiAddr == "" {
			apiAddr = "-"
		}
		contact := v.Contact
		if contact == "" {
			contact = "-" // a director that does not report reachability yet
		}
		last := "-"
		if !v.LastContact.IsZero() {
			last = ago(st.At, v.LastContact) + " ago"
		}
		fmt.Fprintf(b, "%s%-12s %-8s %-27s %-10s raft %-21s api %s\n", label, v.ID, role, contact, last, v.RaftAddr, apiAddr)
		if !v.FailingSince.IsZero() {
			fmt.Fprintf(b, "%s%-12s unreachable for %s\n", "        ", "", ago(st.At, v.FailingSince))
		}
	}
	b.WriteString("        (contact, last contact: as the leader sees its followers, a follower its leader; unknown = only the leader knows)\n")
}

func ago(now, t time.Time) string {
	if now.IsZero() {
		now = time.Now()
	}
	return max(now.Sub(t), 0).Round(100 * time.Millisecond).String()
}
