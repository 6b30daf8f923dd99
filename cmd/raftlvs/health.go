package main

import (
	"net/netip"

	"github.com/spf13/pflag"

	"github.com/raftlvs/raftlvs/fsm"
)

// checkSyntax is the short help of a --check value.
const checkSyntax = "TYPE[:ARG][,KEY=VALUE…], e.g. http:/healthz,status=200-299,interval=2s,fall=3 or tcp or exec:/usr/local/bin/check-db"

// healthFlags are a service's health-check settings, keepalived's and a few more.
type healthFlags struct {
	check      string
	onDown     string
	quorum     int
	hysteresis int
	sorry      string
	failOpen   int
}

func (f *healthFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.check, "check", "", "health check of the real servers ("+checkSyntax+"); off: none")
	fs.StringVar(&f.onDown, "on-down", "", "what a real server found down becomes: remove (default, as keepalived) or inhibit (weight 0, inhibit_on_failure)")
	fs.IntVar(&f.quorum, "quorum", 0, "sum of in-rotation weights below which the sorry server takes over (0: none)")
	fs.IntVar(&f.hysteresis, "hysteresis", 0, "quorum hysteresis: lost below quorum-hysteresis, back at quorum+hysteresis")
	fs.StringVar(&f.sorry, "sorry", "", "sorry server ADDR[:PORT], alone in the table while the quorum is lost (none: remove it)")
	fs.IntVar(&f.failOpen, "fail-open", 0, "never let checks take more than this percentage of the real servers out at once (0: off)")
}

// apply sets on svc the health settings the command line gave, and only those.
func (f *healthFlags) apply(fs *pflag.FlagSet, svc *fsm.Service) error {
	if fs.Changed("check") {
		hc, err := parseCheckFlag("--check", f.check, "off")
		if err != nil {
			return err
		}
		svc.HealthCheck = hc
	}
	if fs.Changed("on-down") {
		switch d := fsm.DownAction(f.onDown); d {
		case fsm.DownRemove, fsm.DownInhibit:
			svc.OnDown = d
		default:
			return usagef("--on-down %q: want remove or inhibit", f.onDown)
		}
	}
	if fs.Changed("quorum") {
		svc.Quorum = f.quorum
	}
	if fs.Changed("hysteresis") {
		svc.Hysteresis = f.hysteresis
	}
	if fs.Changed("fail-open") {
		svc.FailOpenPercent = f.failOpen
	}
	if fs.Changed("sorry") {
		if f.sorry == "none" || f.sorry == "" {
			svc.SorryServer = netip.AddrPort{}
		} else {
			ap, err := parseVIPPort(f.sorry)
			if err != nil {
				return usagef("--sorry: %v", err)
			}
			svc.SorryServer = ap
		}
	}
	return nil
}

// parseCheckFlag reads a --check value; clear (off, inherit) is no check at all.
func parseCheckFlag(flag, text, clear string) (*fsm.HealthCheck, error) {
	if text == clear {
		return nil, nil
	}
	hc, err := fsm.ParseHealthCheck(text)
	if err != nil {
		return nil, usagef("%s %q: %v", flag, text, err)
	}
	return hc, nil
}
