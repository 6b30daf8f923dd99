// Package ipvsadm reads and writes IPVS rule sets in the format of `ipvsadm -S -n`
// (`ipvsadm-save -n`), which `ipvsadm -R` reads back. raftlvs uses it for `save` and
// `restore`, so that a keepalived/ipvsadm table migrates in one command.
//
// The package is pure: it reads and writes only the io.Reader and io.Writer it is given.
//
// Choices, so that Parse then Write reproduces ipvsadm's bytes:
//   - Forwarding is per real server in IPVS but a default per service in raftlvs. Parse sets
//     each service's Forwarding to the method its real servers share; if they differ, to
//     the most common one (ties: dr, nat, tun), and only the real servers that differ carry
//     their own Forwarding. A service with no real servers gets dr, the method ipvsadm's -a
//     would give it. Write prints each real server's method in force.
//   - Real servers without a method are dr and without a weight 1, as with ipvsadm -a.
//   - -x/-y thresholds are read (ipvsadm -R honours them) but not written: ipvsadm -S does
//     not print them. -M without -p is dropped: the kernel uses the mask only for persistence
//     and ipvsadm -S never prints it.
//   - Names are never resolved: addresses and ports must be numeric (the -n form).
//   - Services and real servers are ordered as ipvsadm sorts them, quirks included (see
//     order.go).
//   - Two deliberate departures from ipvsadm 1.31, both where its output cannot be restored:
//     an sh or mh service with flag-3 set is written with "flag-3" in -b (ipvsadm drops the
//     name and prints a dangling -b), and fwmarks of 2^31 and above, which ipvsadm prints
//     as negative numbers, are read back as the mark they stand for.
package ipvsadm

import (
	"fmt"

	"github.com/raftlvs/raftlvs/fsm"
)

// Rules is an IPVS rule set: services and their real servers.
type Rules struct {
	Services    []fsm.Service
	RealServers []fsm.RealServer
}

// New returns the rule set of these services and real servers, such as a State's.
// What the ipvsadm format cannot express (names, thresholds, health checks, quorum, health
// and admin state) is ignored by Write.
func New(services []fsm.Service, servers []fsm.RealServer) *Rules {
	return &Rules{Services: services, RealServers: servers}
}

// Commands returns the commands that create the rule set: each service's fsm.AddService
// followed by an fsm.AddRealServer for each of its real servers, in ipvsadm's order. Real
// servers of services not in the set come last, so that applying them fails loudly
// instead of being dropped here.
func (r *Rules) Commands() []fsm.Command {
	groups, orphans := r.arrange()
	cmds := make([]fsm.Command, 0, len(r.Services)+len(r.RealServers))
	for _, g := range groups {
		cmds = append(cmds, fsm.AddService{Service: g.service})
		for _, rs := range g.servers {
			cmds = append(cmds, fsm.AddRealServer{RealServer: rs})
		}
	}
	for _, rs := range orphans {
		cmds = append(cmds, fsm.AddRealServer{RealServer: rs})
	}
	return cmds
}

// LineError is a rejected line of input. Err is the reason; it wraps the fsm error
// classes (fsm.ErrInvalid, fsm.ErrExists, fsm.ErrNotFound, fsm.ErrConflict).
type LineError struct {
	Line int    // 1-based
	Text string // the line, trimmed
	Err  error
}

// maxQuotedLine bounds how much of a bad line an error repeats.
const maxQuotedLine = 120

func (e *LineError) Error() string {
	text := e.Text
	if len(text) > maxQuotedLine {
		text = text[:maxQuotedLine] + "…"
	}
	if text == "" {
		return fmt.Sprintf("line %d: %v", e.Line, e.Err)
	}
	return fmt.Sprintf("line %d: %s: %v", e.Line, text, e.Err)
}

func (e *LineError) Unwrap() error { return e.Err }

// invalid is a problem with one option of a line.
func invalid(option, format string, args ...any) error {
	return &fsm.FieldError{Field: option, Reason: fmt.Sprintf(format, args...), Kind: fsm.ErrInvalid}
}
