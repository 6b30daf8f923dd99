package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/dialect/declarative"
	"github.com/raftlvs/raftlvs/dialect/ipvsadm"
	"github.com/raftlvs/raftlvs/fsm"
	"github.com/raftlvs/raftlvs/fsm/plan"
)

func newExportCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "export",
		Short: "Print the whole desired state (services, checks, policies, real servers) as YAML, for apply -f",
		Long: `Print the cluster's services with every setting (scheduler, persistence, forwarding,
health check, on-down, quorum, hysteresis, sorry server, fail-open) and the real servers
operators added, as one YAML document: what raftlvs apply -f reads, so that
raftlvs export > lb.yaml; raftlvs apply -f lb.yaml changes nothing. Real servers that
agents registered are named in a comment only: their agents keep them.`,
		Args: exactArgs(0, "no arguments"),
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			st, err := clientFor(cmd).State(ctxOf(cmd))
			if err != nil {
				return fmt.Errorf("export: %w", err)
			}
			doc, agents := declarative.Export(st.Services, st.RealServers)
			header := fmt.Sprintf("raftlvs export of cluster %s: raftlvs diff -f / apply -f read it back.", st.ClusterID)
			if len(agents) > 0 {
				header += "\nReal servers registered by agents, left out (their agents keep them):"
				for _, rs := range agents {
					header += fmt.Sprintf("\n  %s of %s (%s)", netip.AddrPortFrom(rs.Addr, rs.Port), rs.Service, rs.Origin)
				}
			}
			data, err := doc.Marshal(header)
			if err != nil {
				return fmt.Errorf("export: %w", err)
			}
			_, err = cmd.OutOrStdout().Write(data)
			return err
		}),
	}
}

// fileFlags are diff's and apply's.
type fileFlags struct {
	file  string
	prune bool
}

func (f *fileFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&f.file, "filename", "f", "", "the YAML document (raftlvs export's format); - is standard input")
	cmd.Flags().BoolVar(&f.prune, "prune", false, "also remove the services the file does not name (not those agents serve)")
	cmd.MarkFlagRequired("filename")
}

// planned is a file measured against the cluster.
type planned struct {
	client  *api.Client
	state   *api.StateDump
	table   plan.Table
	changes *plan.Changes
}

// planFile reads the file, then the cluster's state, and measures one against the other.
func (f *fileFlags) planFile(cmd *cobra.Command) (*planned, error) {
	var data []byte
	var err error
	if f.file == "-" {
		data, err = io.ReadAll(cmd.InOrStdin())
	} else {
		data, err = os.ReadFile(f.file)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.file, err)
	}
	doc, err := declarative.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.file, err)
	}
	table, err := doc.Table()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.file, err)
	}
	p := &planned{client: clientFor(cmd), table: table}
	if p.state, err = p.client.State(ctxOf(cmd)); err != nil {
		return nil, fmt.Errorf("read the cluster's state: %w", err)
	}
	p.changes = plan.Against(table, p.state.Services, p.state.RealServers, plan.Options{Prune: f.prune, KeepAgentServices: true})
	return p, nil
}

func newDiffCmd() *cobra.Command {
	var f fileFlags
	cmd := &cobra.Command{
		Use:   "diff -f FILE [--prune]",
		Short: "Show what apply -f FILE would change, and change nothing",
		Long: `Measure the YAML document against the cluster and list what raftlvs apply -f would do:
+ creates, ~ changes (each setting, old → new), - removes. Services are matched by what
they match (protocol, VIP and port, or fwmark); the real servers of a service in the file
become those of the file, except those agents registered. Services the file does not
name are left alone unless --prune.`,
		Args: exactArgs(0, "no arguments (the file is -f)"),
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			p, err := f.planFile(cmd)
			if err != nil {
				return fmt.Errorf("diff: %w", err)
			}
			w := bufio.NewWriter(cmd.OutOrStdout())
			writeDiff(w, p, f.prune)
			return w.Flush()
		}),
	}
	f.register(cmd)
	return cmd
}

func newApplyCmd() *cobra.Command {
	var f fileFlags
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "apply -f FILE [--prune] [--dry-run]",
		Short: "Make the cluster's services and real servers those of a YAML document, atomically",
		Long: `Make the cluster what the YAML document (raftlvs export's format) says: the changes
raftlvs diff -f lists, sent as one batch that applies whole or not at all (a bad file,
or one the cluster refuses, changes nothing). With --prune the services the file does not
name are removed too, but never real servers that agents registered, nor a service they
serve. --dry-run has the leader check the batch against its state and applies nothing.`,
		Args: exactArgs(0, "no arguments (the file is -f)"),
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			p, err := f.planFile(cmd)
			if err != nil {
				return fmt.Errorf("apply: %w", err)
			}
			w := bufio.NewWriter(cmd.OutOrStdout())
			defer w.Flush()
			writeDiff(w, p, f.prune)
			if len(p.changes.Steps) == 0 {
				return nil
			}
			if err := w.Flush(); err != nil {
				return err
			}
			res, err := sendBatch(cmd, p.client, p.changes.Commands(), dryRun)
			if err != nil {
				return fmt.Errorf("apply %s: %w", f.file, err)
			}
			if dryRun {
				fmt.Fprintf(w, "dry run: the leader accepts these %d commands as one batch; nothing applied\n", res.Checked)
				return nil
			}
			fmt.Fprintf(w, "applied %d commands in one batch\n", res.Applied)
			return nil
		}),
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "have the leader check the batch, and apply nothing")
	return cmd
}

// sendBatch makes fsm commands one change of the cluster, or has the leader check them
// (dryRun): one batch, or a staged transaction past api.StagedChunk commands.
func sendBatch(cmd *cobra.Command, c *api.Client, cmds []fsm.Command, dryRun bool) (*api.BatchResult, error) {
	// One batch is one log entry every director stores and applies: give the leader the
	// whole of its bound before giving up on the answer.
	c.Timeout = max(c.Timeout, api.BatchTimeout+10*time.Second)
	return c.Apply(ctxOf(cmd), cmds, dryRun)
}

// writeDiff lists the plan's steps with each changed setting's old and new value, then
// what it leaves alone.
func writeDiff(w io.Writer, p *planned, prune bool) {
	c := p.changes
	services := map[string]fsm.Service{}
	for _, s := range p.state.Services {
		services[s.Name] = s
	}
	servers := map[fsm.RSKey]fsm.RealServer{}
	for _, rs := range p.state.RealServers {
		servers[rs.Key()] = rs
	}
	for _, s := range c.Steps {
		switch {
		case s.Service != nil && s.Op == plan.OpRemove:
			n := 0
			for _, rs := range p.state.RealServers {
				if rs.Service == s.Service.Name {
					n++
				}
			}
			fmt.Fprintf(w, "- service %s (%s) and its %d real servers\n", s.Service.Name, matchLabel(s.Service), n)
		case s.Service != nil && s.Op == plan.OpCreate:
			fmt.Fprintf(w, "+ service %s (%s)\n", s.Service.Name, matchLabel(s.Service))
		case s.Service != nil:
			old := services[s.Service.Name]
			fmt.Fprintf(w, "~ service %s (%s)\n", s.Service.Name, matchLabel(s.Service))
			writeFields(w, &old, s.Service, s.Fields)
		case s.Op == plan.OpRemove:
			fmt.Fprintf(w, "- real server %s of %s\n", netip.AddrPortFrom(s.RealServer.Addr, s.RealServer.Port), s.RealServer.Service)
		case s.Op == plan.OpCreate:
			fmt.Fprintf(w, "+ real server %s of %s (weight %d)\n", netip.AddrPortFrom(s.RealServer.Addr, s.RealServer.Port), s.RealServer.Service, s.RealServer.Weight)
		default:
			old := servers[s.RealServer.Key()]
			fmt.Fprintf(w, "~ real server %s of %s\n", netip.AddrPortFrom(s.RealServer.Addr, s.RealServer.Port), s.RealServer.Service)
			writeFields(w, &old, s.RealServer, s.Fields)
		}
	}
	if len(c.Steps) == 0 {
		fmt.Fprintln(w, "no changes")
	}
	fmt.Fprintf(w, "unchanged: %d services, %d real servers\n", c.UnchangedServices, c.UnchangedServers)
	for _, s := range p.table.Services {
		for _, have := range p.state.Services {
			if s.Name != have.Name && s.Match() == have.Match() {
				fmt.Fprintf(w, "note: the file's service %s is %s in the cluster (services are matched by %s, and keep their name)\n", s.Name, have.Name, matchLabel(&have))
			}
		}
	}
	if len(c.Untouched) > 0 {
		hint := ""
		if !prune {
			hint = " (--prune removes them)"
		}
		fmt.Fprintf(w, "not in the file, left alone%s: %s\n", hint, strings.Join(c.Untouched, " "))
	}
	if len(c.KeptForAgents) > 0 {
		fmt.Fprintf(w, "not in the file, kept: agents serve them: %s\n", strings.Join(c.KeptForAgents, " "))
	}
	for _, rs := range c.AgentServers {
		fmt.Fprintf(w, "left to its agent: %s of %s (%s)\n", netip.AddrPortFrom(rs.Addr, rs.Port), rs.Service, rs.Origin)
	}
}

// matchLabel is what a service matches, as ipvsadm -Ln names it ("TCP 192.0.2.10:80").
func matchLabel(s *fsm.Service) string {
	return strings.Join(strings.Fields(ipvsadm.ServiceLabel(s)), " ")
}

// writeFields prints each named setting as old → new, checks in their text form.
func writeFields(w io.Writer, old, new any, fields []string) {
	a, b := plan.Fields(old), plan.Fields(new)
	for _, f := range fields {
		from, to := a[f], b[f]
		if f == "health_check" {
			from, to = checkField(from), checkField(to)
		}
		fmt.Fprintf(w, "    %s: %s → %s\n", f, from, to)
	}
}

// checkField shows a health check's JSON in its text form ("none" when absent).
func checkField(js string) string {
	if js == "" || js == "null" {
		return "(none)"
	}
	var hc fsm.HealthCheck
	if err := json.Unmarshal([]byte(js), &hc); err != nil {
		return js
	}
	return hc.String()
}
