package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/raftlvs/raftlvs/cluster/api"
	"github.com/raftlvs/raftlvs/fsm"
)

// listing is which table `status` prints, as ipvsadm's -L variants.
type listing int

const (
	listPlain listing = iota // ipvsadm -Ln
	listStats                // ipvsadm -Ln --stats
	listRate                 // ipvsadm -Ln --rate
)

func newStatusCmd() *cobra.Command {
	var stats, rate, exact bool
	var output string
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
			// The text shows ActiveConn and InActConn as ipvsadm -Ln does; JSON has the
			// counters with --stats or --rate only (scripts poll it).
			st, err := clientFor(cmd).Status(ctxOf(cmd), output != "json" || stats || rate)
			if err != nil {
				return fmt.Errorf("status: %w", err)
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			mode := listPlain
			switch {
			case stats:
				mode = listStats
			case rate:
				mode = listRate
			}
			if mode != listPlain && (st.DataPlane == nil || st.DataPlane.Services == nil) {
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
	return cmd
}

func renderStatus(w io.Writer, st *api.StatusResponse, mode listing, exact bool) error {
	var b strings.Builder
	renderCluster(&b, st)
	b.WriteString("\n")
	renderTable(&b, st, mode, exact)
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
	if err := renderAgents(&b, st.Agents); err != nil {
		return err
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// renderAgents lists the real-server agents the director sees in the gossip pool.
func renderAgents(b *strings.Builder, raw json.RawMessage) error {
	if len(raw) == 0 {
		return nil
	}
	var agents []agentStatus
	if err := json.Unmarshal(raw, &agents); err != nil {
		return fmt.Errorf("decode the agents of the status: %w", err)
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
	return nil
}

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
	for i, v := range n.Voters {
		label := "        "
		if i == 0 {
			label = "Voters  "
		}
		role := strings.ToLower(v.Suffrage)
		if v.ID == n.LeaderID {
			role = "leader"
		}
		apiAddr := v.APIAddr
		if apiAddr == "" {
			apiAddr = "-"
		}
		fmt.Fprintf(b, "%s%-12s %-8s raft %-21s api %s\n", label, v.ID, role, v.RaftAddr, apiAddr)
	}
}

// renderTable prints the services as ipvsadm -Ln does (ipvsadm.c print_title and
// print_service_entry), with the raftlvs service name appended to each service line and
// the real server's state (draining, up, down, unknown) after ipvsadm's columns.
func renderTable(b *strings.Builder, st *api.StatusResponse, mode listing, exact bool) {
	counters := map[string]api.ServiceCounters{}
	if st.DataPlane != nil {
		for _, sc := range st.DataPlane.Services {
			counters[sc.Service] = sc
		}
	}
	switch mode {
	case listStats:
		fmt.Fprintf(b, "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n", "Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes")
	case listRate:
		fmt.Fprintf(b, "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n", "Prot LocalAddress:Port", "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS")
	default:
		b.WriteString("Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn State\n")
	}
	for _, svc := range st.Services {
		sc, haveCounters := counters[svc.Name]
		label := serviceLabel(svc.Service)
		switch mode {
		case listStats:
			fmt.Fprintf(b, "%-33s%s\n", label, largenums(exact, sc.Stats.Conns, sc.Stats.InPkts, sc.Stats.OutPkts, sc.Stats.InBytes, sc.Stats.OutBytes))
		case listRate:
			fmt.Fprintf(b, "%-33s%s\n", label, largenums(exact, sc.Stats.CPS, sc.Stats.InPPS, sc.Stats.OutPPS, sc.Stats.InBPS, sc.Stats.OutBPS))
		default:
			fmt.Fprintf(b, "%s %s%s  [%s]\n", label, svc.Scheduler, serviceFlagsText(svc.Service), svc.Name)
		}
		for _, rs := range svc.RealServers {
			dest := hostPort(rs.Addr, rs.Port)
			var rc api.RealServerCounters
			var found bool
			for _, c := range sc.RealServers {
				if c.Addr == rs.Addr && c.Port == rs.Port {
					rc, found = c, true
				}
			}
			switch mode {
			case listStats:
				fmt.Fprintf(b, "  -> %-28s%s\n", dest, largenums(exact, rc.Stats.Conns, rc.Stats.InPkts, rc.Stats.OutPkts, rc.Stats.InBytes, rc.Stats.OutBytes))
			case listRate:
				fmt.Fprintf(b, "  -> %-28s %8d %8d %8d%s\n", dest, rc.Stats.CPS, rc.Stats.InPPS, rc.Stats.OutPPS, largenums(exact, rc.Stats.InBPS, rc.Stats.OutBPS))
			default:
				active, inactive := "-", "-"
				if haveCounters && found {
					active, inactive = strconv.FormatUint(uint64(rc.ActiveConns), 10), strconv.FormatUint(uint64(rc.InactiveConns), 10)
				}
				fmt.Fprintf(b, "  -> %-28s %-7s %-6d %-10s %-10s %s\n", dest, forwardName(rs.Method(&svc.Service)), rs.Weight, active, inactive, rsState(rs))
			}
		}
	}
}

// serviceLabel is ipvsadm's "TCP  192.0.2.10:80" or "FWM  100 [IPv6]".
func serviceLabel(s fsm.Service) string {
	if s.IsFWMark() {
		if s.Family == fsm.IPv6 {
			return fmt.Sprintf("FWM  %d IPv6", s.FWMark)
		}
		return fmt.Sprintf("FWM  %d", s.FWMark)
	}
	return fmt.Sprintf("%-4s %s", strings.ToUpper(string(s.Protocol)), hostPort(s.VIP, s.Port))
}

// serviceFlagsText is what ipvsadm -Ln prints after the scheduler.
func serviceFlagsText(s fsm.Service) string {
	var b strings.Builder
	if len(s.SchedFlags) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(s.SchedFlags, ","))
	}
	if s.Persistence > 0 {
		fmt.Fprintf(&b, " persistent %d", s.Persistence)
		if s.PersistMask != 0 && s.PersistMask != s.Family.Bits() {
			if s.Family == fsm.IPv4 {
				fmt.Fprintf(&b, " mask %s", ipv4Mask(s.PersistMask))
			} else {
				fmt.Fprintf(&b, " mask %d", s.PersistMask)
			}
		}
	}
	if s.PersistEngine != "" {
		fmt.Fprintf(&b, " pe %s", s.PersistEngine)
	}
	if s.OnePacket {
		b.WriteString(" ops")
	}
	return b.String()
}

func ipv4Mask(bits int) string {
	var a [4]byte
	for i := range min(bits, 32) {
		a[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom4(a).String()
}

func hostPort(a netip.Addr, port uint16) string {
	return netip.AddrPortFrom(a, port).String()
}

// forwardName is ipvsadm's name of a forwarding method.
func forwardName(f fsm.Forwarding) string {
	switch f {
	case fsm.NAT:
		return "Masq"
	case fsm.DR:
		return "Route"
	case fsm.TUN:
		return "Tunnel"
	}
	return string(f)
}

func rsState(rs fsm.RealServer) string {
	if rs.Admin == fsm.Draining {
		return "draining"
	}
	return string(rs.Health)
}

// largenums prints counters as ipvsadm's print_largenum: width 9, and above 10^8 in
// K/M/G/T units unless exact.
func largenums(exact bool, values ...uint64) string {
	var b strings.Builder
	for _, v := range values {
		switch {
		case exact:
			s := strconv.FormatUint(v, 10)
			width := 9
			if len(s) > 8 {
				width = len(s) + 1
			}
			fmt.Fprintf(&b, "%*s", width, s)
		case v < 100_000_000:
			fmt.Fprintf(&b, "%9d", v)
		case v < 1_000_000_000:
			fmt.Fprintf(&b, "%8dK", v/1_000)
		case v < 100_000_000_000:
			fmt.Fprintf(&b, "%8dM", v/1_000_000)
		case v < 100_000_000_000_000:
			fmt.Fprintf(&b, "%8dG", v/1_000_000_000)
		default:
			fmt.Fprintf(&b, "%8dT", v/1_000_000_000_000)
		}
	}
	return b.String()
}
