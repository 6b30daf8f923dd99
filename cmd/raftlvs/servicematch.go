package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/fsm"
)

// serviceRef names the service a real-server command works on: by its name (the first
// argument), or as ipvsadm does, by what it matches (-t/-u/--sctp-service VIP:PORT, -f
// FWMARK [-6]); the real server is then the one argument left, or -r.
type serviceRef struct {
	matchFlags
	realServer string
}

func (f *serviceRef) register(fs *pflag.FlagSet) {
	f.matchFlags.register(fs, "the service by its match, as ipvsadm (instead of SERVICE): ")
	fs.StringVarP(&f.realServer, "real-server", "r", "", "the real server ADDR[:PORT], as ipvsadm (instead of the argument)")
}

// matchFlags are ipvsadm's ways to name a service by what it matches: -t, -u or
// --sctp-service VIP:PORT, or -f FWMARK [-6].
type matchFlags struct {
	tcp, udp, sctp string
	fwmark         uint32
	ipv6           bool
}

func (f *matchFlags) register(fs *pflag.FlagSet, lead string) {
	fs.StringVarP(&f.tcp, "tcp-service", "t", "", lead+"TCP VIP:PORT")
	fs.StringVarP(&f.udp, "udp-service", "u", "", lead+"UDP VIP:PORT")
	fs.StringVar(&f.sctp, "sctp-service", "", lead+"SCTP VIP:PORT")
	fs.Uint32VarP(&f.fwmark, "fwmark-service", "f", 0, lead+"firewall mark")
	fs.BoolVarP(&f.ipv6, "ipv6", "6", false, "the fwmark service is IPv6")
}

// byMatch reports whether the command line names the service by its match.
func (f *matchFlags) byMatch(fs *pflag.FlagSet) bool {
	for _, name := range []string{"tcp-service", "udp-service", "sctp-service", "fwmark-service"} {
		if fs.Changed(name) {
			return true
		}
	}
	return false
}

// args checks the positional arguments against the flags: SERVICE ADDR, or with a match
// flag ADDR, and with -r one argument fewer.
func (f *serviceRef) args(cmd *cobra.Command, args []string) error {
	want := 2
	if f.byMatch(cmd.Flags()) {
		want--
	}
	if cmd.Flags().Changed("real-server") {
		want--
	}
	if len(args) != want {
		return usagef("want SERVICE and ADDR[:PORT] (or -t/-u/--sctp-service VIP:PORT or -f FWMARK for SERVICE, -r for ADDR), got %d argument(s)", len(args))
	}
	return nil
}

// resolve returns the service's name and the real server's ADDR[:PORT] text, looking
// the service up by its match when it was given that way.
func (f *serviceRef) resolve(ctx context.Context, cmd *cobra.Command, c *api.Client, args []string) (string, string, error) {
	fs := cmd.Flags()
	rsArg := f.realServer
	if !fs.Changed("real-server") {
		rsArg = args[len(args)-1]
	}
	if !f.byMatch(fs) {
		if fs.Changed("ipv6") {
			return "", "", usagef("-6 goes with -f")
		}
		return args[0], rsArg, nil
	}
	match, err := f.matchOf(fs)
	if err != nil {
		return "", "", err
	}
	name, err := findByMatch(ctx, c, match)
	return name, rsArg, err
}

// matchOf is the service the match flags describe: its protocol, VIP, port and family,
// or its mark and family. One of them must be given.
func (f *matchFlags) matchOf(fs *pflag.FlagSet) (fsm.Service, error) {
	svc, given, err := f.match(fs)
	if err == nil && !given {
		err = usagef("give one of -t, -u, --sctp-service and -f")
	}
	return svc, err
}

// match is matchOf where none may be given (given false).
func (f *matchFlags) match(fs *pflag.FlagSet) (svc fsm.Service, given bool, err error) {
	var out []fsm.Service
	for _, m := range []struct {
		flag  string
		proto fsm.Protocol
		value string
	}{{"tcp-service", fsm.TCP, f.tcp}, {"udp-service", fsm.UDP, f.udp}, {"sctp-service", fsm.SCTP, f.sctp}} {
		if !fs.Changed(m.flag) {
			continue
		}
		ap, err := parseVIPPort(m.value)
		if err != nil {
			return fsm.Service{}, false, usagef("--%s: %v", m.flag, err)
		}
		out = append(out, fsm.Service{Protocol: m.proto, VIP: ap.Addr(), Port: ap.Port(), Family: fsm.FamilyOf(ap.Addr())})
	}
	if fs.Changed("fwmark-service") {
		svc := fsm.Service{FWMark: f.fwmark, Family: fsm.IPv4}
		if f.ipv6 {
			svc.Family = fsm.IPv6
		}
		out = append(out, svc)
	} else if fs.Changed("ipv6") {
		return fsm.Service{}, false, usagef("-6 goes with -f")
	}
	switch len(out) {
	case 0:
		return fsm.Service{}, false, nil
	case 1:
		return out[0], true, nil
	}
	return fsm.Service{}, false, usagef("give one of -t, -u, --sctp-service and -f")
}

// findByMatch is the name of the service that matches match.
func findByMatch(ctx context.Context, c *api.Client, match fsm.Service) (string, error) {
	svcs, err := c.Services(ctx)
	if err != nil {
		return "", fmt.Errorf("find the service %s: %w", matchText(match), err)
	}
	for _, s := range svcs {
		if s.Match() == match.Match() {
			return s.Name, nil
		}
	}
	return "", fmt.Errorf("no service matches %s: %w", matchText(match), fsm.ErrNotFound)
}

// matchText is a match as the command line gives it.
func matchText(s fsm.Service) string {
	switch {
	case s.IsFWMark() && s.Family == fsm.IPv6:
		return fmt.Sprintf("-f %d -6", s.FWMark)
	case s.IsFWMark():
		return fmt.Sprintf("-f %d", s.FWMark)
	case s.Protocol == fsm.UDP:
		return "-u " + netip.AddrPortFrom(s.VIP, s.Port).String()
	case s.Protocol == fsm.SCTP:
		return "--sctp-service " + netip.AddrPortFrom(s.VIP, s.Port).String()
	}
	return "-t " + netip.AddrPortFrom(s.VIP, s.Port).String()
}

// namingHint explains a service name that was not found and reads as an address: the
// ipvsadm habit of naming a service by VIP:PORT.
func namingHint(name string, err error) error { return hintNaming(name, err, true) }

// hintNaming is namingHint; byMatch says whether the command takes -t/-u/-f for the service.
func hintNaming(name string, err error, byMatch bool) error {
	if !errors.Is(err, fsm.ErrNotFound) {
		return err
	}
	ap, perr := parseVIPPort(name)
	if perr != nil {
		return err
	}
	example := ""
	if ap.Port() != 0 {
		svc := fsm.Service{Protocol: fsm.TCP, VIP: ap.Addr(), Port: ap.Port()}
		example = fmt.Sprintf("; one added without --name is called %s", fsm.DefaultServiceName(&svc))
	}
	if !byMatch {
		return fmt.Errorf("%w\nservices go by name, not by address (raftlvs service ls lists them%s)", err, example)
	}
	return fmt.Errorf("%w\nservices go by name, not by address (raftlvs service ls lists them%s); to name it by its address as ipvsadm does, give -t %s (-u for UDP, --sctp-service for SCTP, -f FWMARK for a firewall mark)",
		err, example, name)
}
