package main

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"os"

	"github.com/spf13/cobra"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/dialect/ipvsadm"
	"github.com/raftlvs/raftlvs/fsm"
	"github.com/raftlvs/raftlvs/fsm/plan"
)

func newSaveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "save",
		Short: "Print the services and real servers as `ipvsadm -Sn` does",
		Args:  exactArgs(0, "no arguments"),
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			st, err := clientFor(cmd).State(ctxOf(cmd))
			if err != nil {
				return fmt.Errorf("save: %w", err)
			}
			w := bufio.NewWriter(cmd.OutOrStdout())
			if err := ipvsadm.New(st.Services, st.RealServers).Write(w); err != nil {
				return fmt.Errorf("save: %w", err)
			}
			return w.Flush()
		}),
	}
}

func newRestoreCmd() *cobra.Command {
	var replace, dryRun bool
	cmd := &cobra.Command{
		Use:   "restore [FILE|-]",
		Short: "Apply rules in `ipvsadm -Sn` format, all or nothing",
		Long: `Apply rules in the format of ipvsadm -Sn (ipvsadm-save -n), read from FILE or
standard input, as one atomic batch: a bad line rejects the whole input, with its line
number, and nothing is applied; a rule set too large for one batch is staged in chunks and
committed at once, all or nothing as well. --replace makes the cluster's table the input's, in the same
batch: services the input lacks are removed, the others changed in place, and what the
ipvsadm format cannot say (names, health checks, quorum and sorry servers, health verdicts,
drains) is kept for the services that stay. --dry-run has the leader check the change
against its state and applies nothing (a staged one is staged, checked, and aborted).`,
		Args: rangeArgs(0, 1, "at most one FILE"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			in := cmd.InOrStdin()
			src := "standard input"
			if len(args) == 1 && args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return fmt.Errorf("restore: %w", err)
				}
				defer f.Close()
				in, src = f, args[0]
			}
			n, err := restore(cmd, in, replace, dryRun)
			if err != nil {
				return fmt.Errorf("restore from %s: %w", src, err)
			}
			if dryRun {
				fmt.Fprintf(cmd.OutOrStdout(), "dry run: the leader accepts the %d commands from %s as one change; nothing restored\n", n, src)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "restored %d commands from %s\n", n, src)
			return nil
		}),
	}
	cmd.Flags().BoolVar(&replace, "replace", false, "make the table the input's: remove what it lacks, keep the checks of what stays")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "have the leader check the change, and restore nothing")
	return cmd
}

func restore(cmd *cobra.Command, in io.Reader, replace, dryRun bool) (int, error) {
	rules, err := ipvsadm.Parse(in)
	if err != nil {
		return 0, err
	}
	c := clientFor(cmd)
	var cmds []fsm.Command
	if replace {
		// Read now, changed in the batch: a service changed meanwhile fails the batch
		// rather than anything half-done.
		st, err := c.State(ctxOf(cmd))
		if err != nil {
			return 0, err
		}
		changes := plan.Against(keepRaftlvsSettings(rules, st), st.Services, st.RealServers, plan.Options{Prune: true})
		cmds = changes.Commands()
		if len(cmds) == 0 {
			return 0, nil
		}
	} else {
		cmds = rules.Commands()
	}
	if len(cmds) == 0 {
		return 0, fmt.Errorf("no rules in the input: %w", fsm.ErrInvalid)
	}
	res, err := sendBatch(cmd, c, cmds, dryRun)
	if err != nil {
		return 0, err
	}
	return res.Applied + res.Checked, nil
}

// keepRaftlvsSettings is the rule set as the table a replace should leave, with what the
// ipvsadm format cannot say kept from the cluster: a service that stays keeps its name,
// health check and policies (on-down, quorum, sorry server, fail-open), a real server
// that stays its own check. Health verdicts and drains stay too (plan.Against).
func keepRaftlvsSettings(rules *ipvsadm.Rules, st *api.StateDump) plan.Table {
	type match struct {
		fwmark uint32
		family fsm.Family
		proto  fsm.Protocol
		vip    netip.AddrPort
	}
	matchOf := func(s *fsm.Service) match {
		if s.IsFWMark() {
			return match{fwmark: s.FWMark, family: s.Family}
		}
		return match{proto: s.Protocol, vip: netip.AddrPortFrom(s.VIP.Unmap(), s.Port)}
	}
	current := map[match]fsm.Service{}
	for _, s := range st.Services {
		current[matchOf(&s)] = s
	}
	checks := map[fsm.RSKey]*fsm.HealthCheck{}
	for _, rs := range st.RealServers {
		checks[rs.Key()] = rs.HealthCheck
	}
	t := plan.Table{RealServers: make([]fsm.RealServer, 0, len(rules.RealServers))}
	renamed := map[string]string{}
	for _, s := range rules.Services {
		if old, ok := current[matchOf(&s)]; ok {
			renamed[s.Name] = old.Name
			s.Name, s.HealthCheck, s.OnDown, s.FailOpenPercent = old.Name, old.HealthCheck, old.OnDown, old.FailOpenPercent
			s.Quorum, s.Hysteresis, s.SorryServer = old.Quorum, old.Hysteresis, old.SorryServer
		}
		t.Services = append(t.Services, s)
	}
	for _, rs := range rules.RealServers {
		if name, ok := renamed[rs.Service]; ok {
			rs.Service = name
		}
		rs.HealthCheck = checks[rs.Key()]
		t.RealServers = append(t.RealServers, rs)
	}
	return t
}
