package main

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/dialect/ipvsadm"
	"github.com/raftlvs/raftlvs/dialect/keepalived"
	"github.com/raftlvs/raftlvs/fsm/plan"
)

func newImportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Import another load balancer's configuration",
	}
	cmd.AddCommand(newImportKeepalivedCmd())
	return cmd
}

func newImportKeepalivedCmd() *cobra.Command {
	var (
		configID             string
		apply, offline, save bool
	)
	cmd := &cobra.Command{
		Use:   "keepalived FILE",
		Short: "Turn keepalived.conf's virtual servers into services (a dry run unless --apply)",
		// Offline it needs no API; with the API, a credential problem shows on the call.
		Annotations: map[string]string{"credentials": "none"},
		Long: `Read keepalived.conf and the files it includes, and print what importing its virtual
servers would create, change and remove in the cluster, then the report of every setting
not carried over as written (VRRP, scripts, checkers raftlvs runs differently), each with
its file:line:column. With --apply the steps are sent as one atomic batch. Services the
file does not mention are left alone; so are real servers registered by agents.

--config-id is keepalived's -i (for @id lines); it defaults to the host name's first label.
--offline reads no cluster (everything is created); --save prints the plan as ipvsadm -Sn
would list it, to compare with keepalived's own table.`,
		Args: exactArgs(1, "FILE"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if apply && offline {
				return usagef("--apply needs the cluster: drop --offline")
			}
			if !cmd.Flags().Changed("config-id") {
				configID = keepalived.DefaultConfigID()
			}
			cfg, err := keepalived.ParseFile(args[0], keepalived.Options{ConfigID: configID, LookupEnv: os.LookupEnv})
			if err != nil {
				return fmt.Errorf("import %s: %w", args[0], err)
			}
			imported, err := keepalived.Translate(cfg, keepalived.Limits{})
			if err != nil {
				return fmt.Errorf("import %s:\n%w", args[0], err)
			}
			w := bufio.NewWriter(cmd.OutOrStdout())
			defer w.Flush()
			if save {
				return ipvsadm.New(imported.Services, imported.RealServers).Write(w)
			}
			st := &api.StateDump{}
			if !offline {
				if st, err = clientFor(cmd).State(ctxOf(cmd)); err != nil {
					return fmt.Errorf("read the cluster's state (or use --offline): %w", err)
				}
			}
			changes := imported.Against(st.Services, st.RealServers)
			fmt.Fprintf(w, "keepalived %s (config id %q, %d files): %d services, %d real servers\n",
				args[0], configID, len(cfg.Files), len(imported.Services), len(imported.RealServers))
			writeChanges(w, changes)
			writeVIPs(w, imported.VIPs)
			writeReport(w, imported.Report)
			if !apply {
				fmt.Fprintln(w, "dry run: nothing applied (--apply sends the steps as one batch)")
				return nil
			}
			if err := w.Flush(); err != nil {
				return err
			}
			n, err := applyChanges(cmd, changes)
			if err != nil {
				return fmt.Errorf("import %s: %w", args[0], err)
			}
			fmt.Fprintf(w, "applied %d commands\n", n)
			return nil
		}),
	}
	cmd.Flags().StringVar(&configID, "config-id", "", "keepalived's config id, for @id lines (default: the host name's first label)")
	cmd.Flags().BoolVar(&apply, "apply", false, "send the steps to the cluster as one atomic batch")
	cmd.Flags().BoolVar(&offline, "offline", false, "compare with an empty cluster instead of reading it")
	cmd.Flags().BoolVar(&save, "save", false, "print the plan as ipvsadm -Sn would, and nothing else")
	return cmd
}

func writeChanges(w io.Writer, c *plan.Changes) {
	for _, s := range c.Steps {
		fmt.Fprintf(w, "  %s\n", s)
	}
	if len(c.Steps) == 0 {
		fmt.Fprintln(w, "  nothing to change")
	}
	fmt.Fprintf(w, "unchanged: %d services, %d real servers\n", c.UnchangedServices, c.UnchangedServers)
	if len(c.Untouched) > 0 {
		fmt.Fprintf(w, "left alone, not in the file: %s\n", strings.Join(c.Untouched, " "))
	}
	for _, rs := range c.AgentServers {
		fmt.Fprintf(w, "left to its agent: %s of %s (%s)\n", netip.AddrPortFrom(rs.Addr, rs.Port), rs.Service, rs.Origin)
	}
}

func writeVIPs(w io.Writer, vips []keepalived.VIP) {
	if len(vips) == 0 {
		return
	}
	fmt.Fprintln(w, "VIPs of the vrrp_instances (the Raft leader holds those of the services):")
	for _, v := range vips {
		use := "a service's: held by the leader"
		if !v.Used {
			use = "no service's: declare it to have the leader hold it: raftlvs vip add " + v.Addr.String()
		}
		fmt.Fprintf(w, "  %s (%s, %s)\n", v.Addr, v.Instance, use)
	}
}

func writeReport(w io.Writer, report []keepalived.Finding) {
	if len(report) == 0 {
		return
	}
	fmt.Fprintf(w, "report: %d settings not carried over as written\n", len(report))
	for _, f := range report {
		fmt.Fprintf(w, "  %s\n", f)
	}
}

// applyChanges sends the steps as one batch: all of it applies, or none.
func applyChanges(cmd *cobra.Command, changes *plan.Changes) (int, error) {
	if len(changes.Steps) == 0 {
		return 0, nil
	}
	res, err := sendBatch(cmd, clientFor(cmd), changes.Commands(), false)
	if err != nil {
		return 0, err
	}
	return res.Applied, nil
}
