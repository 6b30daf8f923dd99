package track

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
	"github.com/raftlvs/raftlvs/healthd"
)

// ErrBadSpec classifies a --track value this package cannot read.
var ErrBadSpec = errors.New("bad tracked check")

// Check is one tracked check: what the operator wrote, and the health check it compiles
// to with the address it probes.
type Check struct {
	Spec    string
	checker healthd.Checker
	target  netip.AddrPort
}

// shell runs an exec check's command line, as keepalived's track_script runs a script:
// "pidof haproxy" works as written. healthd's exec checks append the probed address and
// port as the last two arguments; under sh -c they are $0 and $1, which a command line
// does not see unless it asks.
const shell = "/bin/sh"

// Parse reads one tracked check:
//
//	exec:COMMAND LINE                 run by /bin/sh -c; exit 0 passes (pidof haproxy)
//	http://HOST:PORT/PATH, https://…  a GET; 200-399 passes (the local proxy's health page)
//	tcp:HOST:PORT                     a TCP connect
//
// HOST is an address or localhost. timeout bounds each run.
func Parse(spec string, timeout time.Duration) (Check, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %q: %s", ErrBadSpec, spec, fmt.Sprintf(format, args...))
	}
	hc := &fsm.HealthCheck{TimeoutMS: int(timeout / time.Millisecond)}
	var target netip.AddrPort
	switch kind, rest, _ := strings.Cut(spec, ":"); kind {
	case "exec":
		if strings.TrimSpace(rest) == "" {
			return Check{}, bad("exec: wants a command line")
		}
		hc.Type, hc.Command = fsm.CheckExec, []string{shell, "-c", rest}
		target = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), 0)
	case "tcp":
		ap, err := hostPort(rest)
		if err != nil {
			return Check{}, bad("tcp:HOST:PORT: %v", err)
		}
		hc.Type, target = fsm.CheckTCP, ap
	case "http", "https":
		u, err := url.Parse(spec)
		if err != nil || u.Host == "" {
			return Check{}, bad("want %s://HOST[:PORT]/PATH", kind)
		}
		host := u.Host
		if u.Port() == "" {
			host = net.JoinHostPort(u.Hostname(), map[string]string{"http": "80", "https": "443"}[kind])
		}
		ap, err := hostPort(host)
		if err != nil {
			return Check{}, bad("%v", err)
		}
		hc.Type, hc.Path, target = fsm.CheckType(kind), u.RequestURI(), ap
	default:
		return Check{}, bad("want exec:COMMAND, http://HOST:PORT/PATH, https://… or tcp:HOST:PORT")
	}
	if err := fsm.ValidateHealthCheck("track", hc); err != nil {
		return Check{}, bad("%v", err)
	}
	// The operator wrote the command on this director's own command line: it is not the
	// replicated state's to restrict, so any absolute path may run.
	c, err := healthd.NewChecker(hc, healthd.CheckerConfig{ExecPolicy: healthd.ExecPolicy{Dir: "/"}})
	if err != nil {
		return Check{}, bad("%v", err)
	}
	return Check{Spec: spec, checker: c, target: target}, nil
}

func hostPort(s string) (netip.AddrPort, error) {
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, err
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil || port == 0 {
		return netip.AddrPort{}, fmt.Errorf("bad port %q", p)
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q: an address or localhost", host)
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(port)), nil
}
