package main

import (
	"fmt"
	"net/netip"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/fsm"
)

func newServerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "server",
		Aliases: []string{"rs"},
		Short:   "Add, edit and remove the real servers of a service",
	}
	cmd.AddCommand(newServerAddCmd(), newServerEditCmd(), newServerRmCmd())
	return cmd
}

// serverFlags are ipvsadm's -a/-e options plus the admin state.
type serverFlags struct {
	weight           int
	upper, lower     uint32
	forward          string
	masq, gate, ipip bool
	drain, activate  bool
	check            string
}

func (f *serverFlags) register(fs *pflag.FlagSet) {
	fs.IntVarP(&f.weight, "weight", "w", fsm.DefaultWeight, "weight (0 takes no new connections)")
	fs.Uint32VarP(&f.upper, "u-threshold", "x", 0, "upper connection threshold (0: none)")
	fs.Uint32VarP(&f.lower, "l-threshold", "y", 0, "lower connection threshold")
	fs.StringVar(&f.forward, "forward", "", "forwarding for this real server: nat, dr or tun (default: the service's)")
	fs.BoolVarP(&f.masq, "masquerading", "m", false, "same as --forward nat")
	fs.BoolVarP(&f.gate, "gatewaying", "g", false, "same as --forward dr")
	fs.BoolVarP(&f.ipip, "ipip", "i", false, "same as --forward tun")
	fs.BoolVar(&f.drain, "drain", false, "drain: weight 0 in IPVS, existing connections finish")
	fs.BoolVar(&f.activate, "activate", false, "put a drained real server back in rotation")
	fs.StringVar(&f.check, "check", "", "this real server's own health check, overriding the service's ("+checkSyntax+"); inherit: the service's")
}

// registerOn adds the flags to cmd, with the exclusions cobra checks before running it.
func (f *serverFlags) registerOn(cmd *cobra.Command) {
	f.register(cmd.Flags())
	cmd.MarkFlagsMutuallyExclusive("drain", "activate")
	cmd.MarkFlagsMutuallyExclusive("forward", "masquerading", "gatewaying", "ipip")
}

// apply sets on req what the command line gave, and only that.
func (f *serverFlags) apply(fs *pflag.FlagSet, req *api.RealServerRequest) error {
	if fs.Changed("weight") {
		w := f.weight
		req.Weight = &w
	}
	if fs.Changed("u-threshold") {
		req.UpperThreshold = f.upper
	}
	if fs.Changed("l-threshold") {
		req.LowerThreshold = f.lower
	}
	fwd, err := forwardingFlag(fs, f.forward)
	if err != nil {
		return err
	}
	if fwd != "" {
		req.Forwarding = fwd
	}
	if fs.Changed("check") {
		hc, err := parseCheckFlag("--check", f.check, "inherit")
		if err != nil {
			return err
		}
		req.HealthCheck = hc
	}
	switch {
	case f.drain && f.activate:
		return usagef("--drain and --activate exclude each other")
	case f.drain:
		req.Admin = fsm.Draining
	case f.activate:
		req.Admin = fsm.Active
	}
	return nil
}

// parseRealServer reads ADDR, ADDR:PORT, [V6] or [V6]:PORT; port 0 means "not given".
func parseRealServer(s string) (netip.Addr, uint16, error) {
	ap, err := parseVIPPort(s)
	if err != nil {
		return netip.Addr{}, 0, usagef("real server %v", err)
	}
	return ap.Addr(), ap.Port(), nil
}

func newServerAddCmd() *cobra.Command {
	var f serverFlags
	cmd := &cobra.Command{
		Use:   "add SERVICE ADDR[:PORT] [-w WEIGHT] [-x N] [-y N] [-m|-g|-i] [--drain]",
		Short: "Add a real server to a service (ipvsadm -a)",
		Args:  exactArgs(2, "SERVICE and ADDR[:PORT]"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			addr, port, err := parseRealServer(args[1])
			if err != nil {
				return err
			}
			req := api.RealServerRequest{Addr: addr, Port: port}
			if err := f.apply(cmd.Flags(), &req); err != nil {
				return err
			}
			rs, err := clientFor(cmd).AddRealServer(ctxOf(cmd), args[0], req)
			if err != nil {
				return fmt.Errorf("add real server %s to %s: %w", args[1], args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "real server %s added to %s\n", netip.AddrPortFrom(rs.Addr, rs.Port), args[0])
			return nil
		}),
	}
	f.registerOn(cmd)
	return cmd
}

// findRealServer finds ADDR[:PORT] in a service: without a port, the one real server with
// that address, else the one on the service's port.
func findRealServer(svc *api.ServiceInfo, addr netip.Addr, port uint16) (fsm.RealServer, error) {
	var candidates []fsm.RealServer
	for _, rs := range svc.RealServers {
		if rs.Addr == addr && (port == 0 || rs.Port == port) {
			candidates = append(candidates, rs)
		}
	}
	if len(candidates) > 1 {
		for _, rs := range candidates {
			if rs.Port == svc.Port {
				return rs, nil
			}
		}
		return fsm.RealServer{}, usagef("%s has several real servers at %s: give the port", svc.Name, addr)
	}
	if len(candidates) == 0 {
		return fsm.RealServer{}, fmt.Errorf("no real server %s in %s: %w", addr, svc.Name, fsm.ErrNotFound)
	}
	return candidates[0], nil
}

// currentRealServer reads the real server that args (SERVICE ADDR[:PORT]) name from the
// cluster, for an edit or a removal.
func currentRealServer(cmd *cobra.Command, args []string, what string) (*api.Client, fsm.RealServer, error) {
	addr, port, err := parseRealServer(args[1])
	if err != nil {
		return nil, fsm.RealServer{}, err
	}
	c := clientFor(cmd)
	svc, err := c.Service(ctxOf(cmd), args[0])
	if err != nil {
		return nil, fsm.RealServer{}, fmt.Errorf("%s %s of %s: %w", what, args[1], args[0], err)
	}
	cur, err := findRealServer(svc, addr, port)
	return c, cur, err
}

func newServerEditCmd() *cobra.Command {
	var f serverFlags
	cmd := &cobra.Command{
		Use:   "edit SERVICE ADDR[:PORT] [-w WEIGHT] [-x N] [-y N] [-m|-g|-i] [--drain|--activate]",
		Short: "Change the settings given, and only those, of a real server (ipvsadm -e)",
		Args:  exactArgs(2, "SERVICE and ADDR[:PORT]"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			c, cur, err := currentRealServer(cmd, args, "edit real server")
			if err != nil {
				return err
			}
			req := api.RealServerRequestFrom(cur)
			if err := f.apply(cmd.Flags(), &req); err != nil {
				return err
			}
			if _, err := c.EditRealServer(ctxOf(cmd), args[0], cur.Addr, cur.Port, req); err != nil {
				return fmt.Errorf("edit real server %s of %s: %w", args[1], args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "real server %s of %s changed\n", netip.AddrPortFrom(cur.Addr, cur.Port), args[0])
			return nil
		}),
	}
	f.registerOn(cmd)
	return cmd
}

func newServerRmCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "rm SERVICE ADDR[:PORT]",
		Aliases: []string{"remove", "delete"},
		Short:   "Remove a real server from a service (ipvsadm -d)",
		Args:    exactArgs(2, "SERVICE and ADDR[:PORT]"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			c, cur, err := currentRealServer(cmd, args, "remove real server")
			if err != nil {
				return err
			}
			if err := c.RemoveRealServer(ctxOf(cmd), args[0], cur.Addr, cur.Port); err != nil {
				return fmt.Errorf("remove real server %s from %s: %w", args[1], args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "real server %s removed from %s\n", netip.AddrPortFrom(cur.Addr, cur.Port), args[0])
			return nil
		}),
	}
}
