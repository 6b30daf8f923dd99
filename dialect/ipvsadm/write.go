package ipvsadm

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/raftlvs/raftlvs/fsm"
)

// Write prints the rule set exactly as `ipvsadm -S -n` (ipvsadm 1.31) would for the same
// IPVS table, in ipvsadm's order. It checks the set with the fsm rules first, so that what
// it prints can be read back; what the format cannot express is left out.
func (r *Rules) Write(w io.Writer) error {
	groups, orphans := r.arrange()
	if len(orphans) > 0 {
		rs := orphans[0]
		return fmt.Errorf("write real server %s: %w", hostPort(rs.Addr, rs.Port),
			&fsm.FieldError{Field: "service", Reason: fmt.Sprintf("no service %s in the rule set", rs.Service), Kind: fsm.ErrNotFound})
	}
	names := make(map[string]bool, len(groups))
	for _, g := range groups {
		svc := &g.service
		if names[svc.Name] {
			return fmt.Errorf("write service %s: %w", svc.Name,
				&fsm.FieldError{Field: "name", Reason: "the rule set holds two services of that name", Kind: fsm.ErrExists})
		}
		names[svc.Name] = true
		if err := fsm.ValidateService(svc); err != nil {
			return fmt.Errorf("write service %s: %w", svc.Name, err)
		}
		for _, rs := range g.servers {
			if err := fsm.ValidateRealServer(&rs, svc); err != nil {
				return fmt.Errorf("write real server %s of %s: %w", hostPort(rs.Addr, rs.Port), svc.Name, err)
			}
		}
	}

	bw := bufio.NewWriter(w)
	var line []byte
	for _, g := range groups {
		spec := serviceSpec(&g.service)
		line = appendService(line[:0], spec, &g.service)
		bw.Write(line) // a bufio.Writer keeps its first error for Flush
		for _, rs := range g.servers {
			line = appendServer(line[:0], spec, &g.service, &rs)
			bw.Write(line)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write ipvsadm rules: %w", err)
	}
	return nil
}

// serviceSpec is how ipvsadm names a service on its lines: "-t 192.0.2.10:80",
// "-u [2001:db8::1]:53", "--sctp-service …", "-f 100", "-f 200 -6".
func serviceSpec(s *fsm.Service) string {
	if s.IsFWMark() {
		// ipvsadm prints the unsigned mark with %d: marks of 2^31 and above come out negative.
		mark := strconv.Itoa(int(int32(s.FWMark)))
		if s.Family == fsm.IPv6 {
			return "-f " + mark + " -6"
		}
		return "-f " + mark
	}
	opt := "-t"
	switch s.Protocol {
	case fsm.UDP:
		opt = "-u"
	case fsm.SCTP:
		opt = "--sctp-service"
	}
	return opt + " " + hostPort(s.VIP, s.Port)
}

// appendService is print_service_entry's FMT_RULE service line.
func appendService(b []byte, spec string, s *fsm.Service) []byte {
	b = append(b, "-A "...)
	b = append(b, spec...)
	b = append(b, " -s "...)
	b = append(b, s.Scheduler...)
	if s.Persistence > 0 {
		b = append(b, " -p "...)
		b = strconv.AppendUint(b, uint64(s.Persistence), 10)
		if s.PersistMask != s.Family.Bits() {
			b = append(b, " -M "...)
			if s.Family == fsm.IPv4 {
				b = append(b, formatIPv4Mask(s.PersistMask)...)
			} else {
				b = strconv.AppendInt(b, int64(s.PersistMask), 10)
			}
		}
	}
	if s.PersistEngine != "" {
		b = append(b, " --pe "...)
		b = append(b, s.PersistEngine...)
	}
	if s.OnePacket {
		b = append(b, " -o"...)
	}
	if flags := fsm.SchedFlagNames(s.Scheduler, s.Flags()); len(flags) > 0 {
		b = append(b, " -b "...)
		b = append(b, strings.Join(flags, ",")...)
	}
	return append(b, '\n')
}

// appendServer is print_service_entry's FMT_RULE destination line (print_tunnel_rule for
// tunnels).
func appendServer(b []byte, spec string, s *fsm.Service, rs *fsm.RealServer) []byte {
	b = append(b, "-a "...)
	b = append(b, spec...)
	b = append(b, " -r "...)
	b = append(b, hostPort(rs.Addr, rs.Port)...)
	method := rs.Method(s)
	switch method {
	case fsm.NAT:
		b = append(b, " -m"...)
	case fsm.TUN:
		b = append(b, " -i"...)
	default:
		b = append(b, " -g"...)
	}
	b = append(b, " -w "...)
	b = strconv.AppendInt(b, int64(rs.Weight), 10)
	if method == fsm.TUN {
		b = append(b, " --tun-type ipip"...)
	}
	return append(b, '\n')
}
