package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/raftlvs/raftlvs/dialect/ipvsadm"
	"github.com/raftlvs/raftlvs/fsm"
)

func newServiceCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "service",
		Aliases: []string{"svc"},
		Short:   "Add, edit, remove and list virtual services",
	}
	cmd.AddCommand(newServiceAddCmd(), newServiceEditCmd(), newServiceRmCmd(), newServiceLsCmd())
	return cmd
}

// serviceFlags are ipvsadm's -A/-E options, plus --name and --forward.
type serviceFlags struct {
	matchFlags
	scheduler   string
	schedFlags  string
	persistence uint32
	mask        string
	engine      string
	ops         bool
	forward     string
	masq, gate  bool
	ipip        bool
	name        string
	health      healthFlags
}

func (f *serviceFlags) register(fs *pflag.FlagSet) {
	f.matchFlags.register(fs, "the service's match: ")
	fs.StringVarP(&f.scheduler, "scheduler", "s", "", "scheduler: "+strings.Join(fsm.Schedulers, " ")+" (default "+fsm.DefaultScheduler+")")
	fs.StringVarP(&f.schedFlags, "sched-flags", "b", "", "scheduler flags, comma-separated (sh-fallback,sh-port,mh-fallback,mh-port,flag-1,flag-2,flag-3)")
	fs.Uint32VarP(&f.persistence, "persistent", "p", 0, "persistence timeout in seconds (bare -p: "+strconv.Itoa(ipvsadm.DefaultPersistence)+"; 0 turns it off)")
	fs.Lookup("persistent").NoOptDefVal = strconv.Itoa(ipvsadm.DefaultPersistence)
	fs.StringVarP(&f.mask, "netmask", "M", "", "persistence granularity: IPv4 netmask or prefix length")
	fs.StringVar(&f.engine, "pe", "", "persistence engine (sip)")
	fs.BoolVarP(&f.ops, "ops", "o", false, "one-packet scheduling (UDP)")
	fs.StringVar(&f.forward, "forward", "", "default forwarding of the real servers: nat, dr or tun")
	fs.BoolVarP(&f.masq, "masquerading", "m", false, "same as --forward nat")
	fs.BoolVarP(&f.gate, "gatewaying", "g", false, "same as --forward dr")
	fs.BoolVarP(&f.ipip, "ipip", "i", false, "same as --forward tun")
	fs.StringVar(&f.name, "name", "", "service name (default: derived from the match, e.g. tcp-192.0.2.10-80)")
	f.health.register(fs)
}

// apply sets on svc what the command line gave, and only that: add starts from a zero
// service (the server fills in defaults), edit from the current one.
func (f *serviceFlags) apply(fs *pflag.FlagSet, svc *fsm.Service) error {
	match, given, err := f.match(fs)
	if err != nil {
		return err
	}
	if given {
		svc.Protocol, svc.VIP, svc.Port, svc.FWMark, svc.Family = match.Protocol, match.VIP, match.Port, match.FWMark, match.Family
	}
	if fs.Changed("scheduler") {
		svc.Scheduler = f.scheduler
		if !fs.Changed("sched-flags") {
			svc.SchedFlags = nil // sh/mh flag names do not carry over to another scheduler
		}
	}
	if fs.Changed("sched-flags") {
		svc.SchedFlags = nil
		for fl := range strings.SplitSeq(f.schedFlags, ",") {
			if fl = strings.TrimSpace(fl); fl != "" {
				svc.SchedFlags = append(svc.SchedFlags, fl)
			}
		}
	}
	if fs.Changed("persistent") {
		svc.Persistence = f.persistence
	}
	if fs.Changed("netmask") {
		bits, err := ipvsadm.ParseNetmask(f.mask)
		if err != nil {
			return usagef("-M %s: %v", f.mask, err)
		}
		svc.PersistMask = bits
	} else if given && svc.Family.Bits() < svc.PersistMask {
		svc.PersistMask = 0 // a new family: back to per-client
	}
	if fs.Changed("pe") {
		svc.PersistEngine = f.engine
	}
	if fs.Changed("ops") {
		svc.OnePacket = f.ops
	}
	fwd, err := forwardingFlag(fs, f.forward)
	if err != nil {
		return err
	}
	if fwd != "" {
		svc.Forwarding = fwd
	}
	if fs.Changed("name") {
		svc.Name = f.name
	}
	return f.health.apply(fs, svc)
}

// forwardingFlag reads --forward and its ipvsadm shortcuts -m, -g, -i; "" if none was given.
func forwardingFlag(fs *pflag.FlagSet, forward string) (fsm.Forwarding, error) {
	var got []fsm.Forwarding
	if fs.Changed("forward") {
		switch fsm.Forwarding(forward) {
		case fsm.NAT, fsm.DR, fsm.TUN:
			got = append(got, fsm.Forwarding(forward))
		default:
			return "", usagef("--forward %q: want nat, dr or tun", forward)
		}
	}
	for flag, fwd := range map[string]fsm.Forwarding{"masquerading": fsm.NAT, "gatewaying": fsm.DR, "ipip": fsm.TUN} {
		if fs.Changed(flag) {
			got = append(got, fwd)
		}
	}
	switch len(got) {
	case 0:
		return "", nil
	case 1:
		return got[0], nil
	}
	return "", usagef("give one forwarding method (--forward, -m, -g or -i)")
}

// parseVIPPort reads VIP:PORT, [V6]:PORT, or a bare VIP (port 0, which needs -p).
func parseVIPPort(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	// An address with a port that is not one: say which part is wrong.
	if host, port, err := net.SplitHostPort(s); err == nil {
		if _, err := netip.ParseAddr(host); err == nil {
			n, err := strconv.ParseUint(port, 10, 64)
			switch {
			case errors.Is(err, strconv.ErrRange) || err == nil && n > 65535:
				return netip.AddrPort{}, fmt.Errorf("%q: port %s is out of range 1..65535", s, port)
			case err != nil:
				return netip.AddrPort{}, fmt.Errorf("%q: port %q is not a number", s, port)
			}
		}
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q is not ADDR[:PORT] with a numeric address", s)
	}
	return netip.AddrPortFrom(a.Unmap(), 0), nil
}

// persistenceArg lets "-p 300" work as in ipvsadm, whose option parser gives -p's
// optional value from the next word; pflag only takes "-p=300" or "-p300". It consumes a
// trailing number after a bare -p.
func persistenceArg(fs *pflag.FlagSet, f *serviceFlags, args []string) []string {
	if !fs.Changed("persistent") || f.persistence != ipvsadm.DefaultPersistence || len(args) == 0 {
		return args
	}
	n, err := strconv.ParseUint(args[len(args)-1], 10, 32)
	if err != nil {
		return args
	}
	f.persistence = uint32(n)
	return args[:len(args)-1]
}

func newServiceAddCmd() *cobra.Command {
	var f serviceFlags
	cmd := &cobra.Command{
		Use:   "add (-t|-u|--sctp-service VIP:PORT | -f FWMARK [-6]) [-s SCHED] [-b FLAGS] [-p [TIMEOUT]] [-M MASK] [--pe sip] [-o] [--forward nat|dr|tun] [--name NAME]",
		Short: "Add a virtual service (ipvsadm -A)",
		Args:  cobra.ArbitraryArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			args = persistenceArg(cmd.Flags(), &f, args)
			if len(args) != 0 {
				return usagef("unexpected argument(s) %q", args)
			}
			var svc fsm.Service
			if err := f.apply(cmd.Flags(), &svc); err != nil {
				return err
			}
			if !svc.IsFWMark() && svc.Protocol == "" {
				return usagef("give the service: -t, -u, --sctp-service VIP:PORT or -f FWMARK")
			}
			got, err := clientFor(cmd).AddService(ctxOf(cmd), svc)
			if err != nil {
				return fmt.Errorf("add service: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "service %s added\n", got.Name)
			return nil
		}),
	}
	f.register(cmd.Flags())
	return cmd
}

func newServiceEditCmd() *cobra.Command {
	var f serviceFlags
	cmd := &cobra.Command{
		Use:   "edit NAME [flags of add]",
		Short: "Change the settings given, and only those, of a service (ipvsadm -E)",
		Args:  cobra.ArbitraryArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			args = persistenceArg(cmd.Flags(), &f, args)
			if len(args) != 1 {
				return usagef("want the service NAME")
			}
			if cmd.Flags().Changed("name") {
				return usagef("services cannot be renamed: remove and add it")
			}
			c := clientFor(cmd)
			cur, err := c.Service(ctxOf(cmd), args[0])
			if err != nil {
				return fmt.Errorf("edit service %s: %w", args[0], hintNaming(args[0], err, false))
			}
			svc := cur.Service
			if err := f.apply(cmd.Flags(), &svc); err != nil {
				return err
			}
			if _, err := c.EditService(ctxOf(cmd), args[0], svc); err != nil {
				return fmt.Errorf("edit service %s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "service %s changed\n", args[0])
			return nil
		}),
	}
	f.register(cmd.Flags())
	return cmd
}

func newServiceRmCmd() *cobra.Command {
	var f matchFlags
	cmd := &cobra.Command{
		Use:     "rm NAME | (-t|-u|--sctp-service VIP:PORT | -f FWMARK [-6])",
		Aliases: []string{"remove", "delete"},
		Short:   "Remove a service and its real servers (ipvsadm -D)",
		Args:    rangeArgs(0, 1, "the service NAME or its -t/-u/--sctp-service/-f"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			c := clientFor(cmd)
			name := ""
			if len(args) == 1 {
				name = args[0]
			} else {
				if !f.byMatch(cmd.Flags()) {
					return usagef("give the service NAME or its -t/-u/--sctp-service/-f")
				}
				match, err := f.matchOf(cmd.Flags())
				if err != nil {
					return err
				}
				if name, err = findByMatch(ctxOf(cmd), c, match); err != nil {
					return err
				}
			}
			if err := c.RemoveService(ctxOf(cmd), name); err != nil {
				return fmt.Errorf("remove service %s: %w", name, namingHint(name, err))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "service %s removed\n", name)
			return nil
		}),
	}
	f.register(cmd.Flags(), "the service by its match: ")
	return cmd
}

func newServiceLsCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List services",
		Args:    exactArgs(0, "no arguments"),
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			svcs, err := clientFor(cmd).Services(ctxOf(cmd))
			if err != nil {
				return fmt.Errorf("list services: %w", err)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSERVICE\tSCHEDULER\tFORWARD\tREAL SERVERS")
			for _, s := range svcs {
				active := 0
				for _, rs := range s.RealServers {
					if rs.InRotation() {
						active++
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d in rotation\n", s.Name, ipvsadm.ServiceLabel(&s.Service), s.Scheduler, s.Forwarding, active, len(s.RealServers))
			}
			return tw.Flush()
		}),
	}
}
