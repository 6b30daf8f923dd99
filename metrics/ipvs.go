package metrics

import (
	"github.com/raftlvs/raftlvs/director/ipvs"
	"github.com/raftlvs/raftlvs/fsm"
)

// The labels of node_exporter's IPVS collector (collector/ipvs_linux.go), so that its
// panels carry over with raftlvs_ipvs_ for node_ipvs_; "service" is the raftlvs name.
var (
	serviceLabels = []string{"service", "local_address", "local_port", "proto", "local_mark"}
	backendLabels = []string{"service", "local_address", "local_port", "proto", "local_mark", "remote_address", "remote_port"}
)

// local is a service's labels in node_exporter's form: a fwmark service has no address,
// port 0, proto FWM and its mark; the others an empty local_mark.
type local struct{ address, port, proto, mark string }

func localOfKernel(s ipvs.Service) local {
	if s.FWMark != 0 {
		return local{"", "0", "FWM", u32(s.FWMark)}
	}
	proto := "TCP"
	switch s.Protocol {
	case ipvs.ProtocolUDP:
		proto = "UDP"
	case ipvs.ProtocolSCTP:
		proto = "SCTP"
	}
	return local{s.Address.Unmap().String(), u16(s.Port), proto, ""}
}

func localOfState(s *fsm.Service) local {
	if s.IsFWMark() {
		return local{"", "0", "FWM", u32(s.FWMark)}
	}
	proto := "TCP"
	switch s.Protocol {
	case fsm.UDP:
		proto = "UDP"
	case fsm.SCTP:
		proto = "SCTP"
	}
	return local{s.VIP.Unmap().String(), u16(s.Port), proto, ""}
}
