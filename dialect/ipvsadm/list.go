package ipvsadm

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/fsm"
)

// ListMode is which table List prints, as ipvsadm's -L variants.
type ListMode int

const (
	ListPlain ListMode = iota // ipvsadm -Ln
	ListStats                 // ipvsadm -Ln --stats
	ListRate                  // ipvsadm -Ln --rate
)

// List writes the services as ipvsadm -Ln prints them (ipvsadm.c print_title and
// print_service_entry), with the raftlvs service name after each service line and the
// real server's state (draining, up, down, unknown) after ipvsadm's columns. counters
// are the answering director's; without them ActiveConn and InActConn print "-".
func List(w io.Writer, services []api.ServiceInfo, counters []api.ServiceCounters, mode ListMode, exact bool) error {
	var b strings.Builder
	byName := map[string]api.ServiceCounters{}
	for _, sc := range counters {
		byName[sc.Service] = sc
	}
	switch mode {
	case ListStats:
		fmt.Fprintf(&b, "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n", "Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes")
	case ListRate:
		fmt.Fprintf(&b, "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n", "Prot LocalAddress:Port", "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS")
	default:
		b.WriteString("Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn State\n")
	}
	for _, svc := range services {
		sc, haveCounters := byName[svc.Name]
		label := ServiceLabel(&svc.Service)
		switch mode {
		case ListStats:
			fmt.Fprintf(&b, "%-33s%s\n", label, largenums(exact, sc.Stats.Conns, sc.Stats.InPkts, sc.Stats.OutPkts, sc.Stats.InBytes, sc.Stats.OutBytes))
		case ListRate:
			fmt.Fprintf(&b, "%-33s%s\n", label, largenums(exact, sc.Stats.CPS, sc.Stats.InPPS, sc.Stats.OutPPS, sc.Stats.InBPS, sc.Stats.OutBPS))
		default:
			fmt.Fprintf(&b, "%s %s%s  [%s]\n", label, svc.Scheduler, serviceFlagsText(&svc.Service), raftlvsText(&svc.Service))
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
			case ListStats:
				fmt.Fprintf(&b, "  -> %-28s%s\n", dest, largenums(exact, rc.Stats.Conns, rc.Stats.InPkts, rc.Stats.OutPkts, rc.Stats.InBytes, rc.Stats.OutBytes))
			case ListRate:
				fmt.Fprintf(&b, "  -> %-28s %8d %8d %8d%s\n", dest, rc.Stats.CPS, rc.Stats.InPPS, rc.Stats.OutPPS, largenums(exact, rc.Stats.InBPS, rc.Stats.OutBPS))
			default:
				active, inactive := "-", "-"
				if haveCounters && found {
					active, inactive = strconv.FormatUint(uint64(rc.ActiveConns), 10), strconv.FormatUint(uint64(rc.InactiveConns), 10)
				}
				fmt.Fprintf(&b, "  -> %-28s %-7s %-6d %-10s %-10s %s\n", dest, ForwardName(rs.Method(&svc.Service)), rs.Weight, active, inactive, rsState(rs))
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// raftlvsText is what raftlvs adds to a service line: its name, and its health policy.
func raftlvsText(s *fsm.Service) string {
	parts := []string{s.Name}
	if s.HealthCheck != nil {
		parts = append(parts, "check "+s.HealthCheck.String())
		if s.OnDown == fsm.DownInhibit {
			parts = append(parts, "on-down inhibit")
		}
	}
	if s.Quorum > 0 {
		q := fmt.Sprintf("quorum %d", s.Quorum)
		if s.Hysteresis > 0 {
			q += fmt.Sprintf("±%d", s.Hysteresis)
		}
		if s.QuorumDown {
			q += " lost"
			if s.SorryServer.IsValid() {
				q += ": sorry server " + hostPort(s.SorryServer.Addr(), s.SorryServer.Port())
			}
		}
		parts = append(parts, q)
	}
	return strings.Join(parts, ", ")
}

// ServiceLabel is ipvsadm's "TCP  192.0.2.10:80" or "FWM  100 IPv6".
func ServiceLabel(s *fsm.Service) string {
	if s.IsFWMark() {
		if s.Family == fsm.IPv6 {
			return fmt.Sprintf("FWM  %d IPv6", s.FWMark)
		}
		return fmt.Sprintf("FWM  %d", s.FWMark)
	}
	return fmt.Sprintf("%-4s %s", strings.ToUpper(string(s.Protocol)), hostPort(s.VIP, s.Port))
}

// serviceFlagsText is what ipvsadm -Ln prints after the scheduler.
func serviceFlagsText(s *fsm.Service) string {
	var b strings.Builder
	if len(s.SchedFlags) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(s.SchedFlags, ","))
	}
	if s.Persistence > 0 {
		fmt.Fprintf(&b, " persistent %d", s.Persistence)
		if s.PersistMask != 0 && s.PersistMask != s.Family.Bits() {
			if s.Family == fsm.IPv4 {
				fmt.Fprintf(&b, " mask %s", formatIPv4Mask(s.PersistMask))
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

// ForwardName is ipvsadm's name of a forwarding method.
func ForwardName(f fsm.Forwarding) string {
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

// rsState is the State column: draining, or the health verdict with when it last
// changed (UTC) and the checks' reason.
func rsState(rs fsm.RealServer) string {
	if rs.Admin == fsm.Draining {
		return "draining"
	}
	s := string(rs.Health)
	if !rs.HealthSince.IsZero() {
		s += " since " + rs.HealthSince.UTC().Format("2006-01-02 15:04:05Z")
	}
	if rs.HealthReason != "" {
		s += " (" + rs.HealthReason + ")"
	}
	return s
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
