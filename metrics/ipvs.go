package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/raftlvs/raftlvs/director"
	"github.com/raftlvs/raftlvs/director/ipvs"
	"github.com/raftlvs/raftlvs/fsm"
)

// The labels of node_exporter's IPVS collector (collector/ipvs_linux.go), so that its
// panels carry over with raftlvs_ipvs_ for node_ipvs_; "service" is the raftlvs name.
var (
	serviceLabels = []string{"service", "local_address", "local_port", "proto", "local_mark"}
	backendLabels = []string{"service", "local_address", "local_port", "proto", "local_mark", "remote_address", "remote_port"}
)

var (
	ipvsServiceConns    = desc("ipvs_service_connections_total", "Connections scheduled by the IPVS service on this director since it was created.", serviceLabels...)
	ipvsServiceInPkts   = desc("ipvs_service_incoming_packets_total", "Packets from clients to the IPVS service.", serviceLabels...)
	ipvsServiceOutPkts  = desc("ipvs_service_outgoing_packets_total", "Packets from the real servers back to clients through this director (near 0 for DR and TUN: replies bypass it).", serviceLabels...)
	ipvsServiceInBytes  = desc("ipvs_service_incoming_bytes_total", "Bytes from clients to the IPVS service.", serviceLabels...)
	ipvsServiceOutBytes = desc("ipvs_service_outgoing_bytes_total", "Bytes from the real servers back through this director (near 0 for DR and TUN).", serviceLabels...)

	ipvsBackendActive   = desc("ipvs_backend_connections_active", "Active connections to the real server in this director's IPVS table (a follower counts those the sync daemon copied to it).", backendLabels...)
	ipvsBackendInactive = desc("ipvs_backend_connections_inactive", "Inactive connections (FIN_WAIT, TIME_WAIT, …) to the real server in this director's IPVS table.", backendLabels...)
	ipvsBackendWeight   = desc("ipvs_backend_weight", "Weight of the real server as programmed in the kernel (0 when draining or held out).", backendLabels...)
	ipvsBackendConns    = desc("ipvs_backend_connections_total", "Connections scheduled to the real server since it was added.", backendLabels...)
	ipvsBackendInPkts   = desc("ipvs_backend_incoming_packets_total", "Packets forwarded to the real server.", backendLabels...)
	ipvsBackendOutPkts  = desc("ipvs_backend_outgoing_packets_total", "Packets from the real server back through this director (near 0 for DR and TUN).", backendLabels...)
	ipvsBackendInBytes  = desc("ipvs_backend_incoming_bytes_total", "Bytes forwarded to the real server.", backendLabels...)
	ipvsBackendOutBytes = desc("ipvs_backend_outgoing_bytes_total", "Bytes from the real server back through this director (near 0 for DR and TUN).", backendLabels...)

	realServerState  = desc("real_server_state", "Always 1: the real server's committed health (up, down, unknown) and admin state (active, draining), from the replicated state.", append(backendLabels, "health", "admin")...)
	realServerWeight = desc("real_server_weight", "Weight of the real server as configured (the kernel's is raftlvs_ipvs_backend_weight).", backendLabels...)
	realServerInRot  = desc("real_server_in_rotation", "1 if the real server takes new connections: active and not down.", backendLabels...)
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

// collectIPVS sends the kernel's counters of every programmed service and destination.
func collectIPVS(ch chan<- prometheus.Metric, services []director.ServiceCounters) {
	for _, sc := range services {
		l := localOfKernel(sc.Service)
		sl := []string{sc.Name, l.address, l.port, l.proto, l.mark}
		c := sc.Counters
		ch <- counter(ipvsServiceConns, float64(c.Connections), sl...)
		ch <- counter(ipvsServiceInPkts, float64(c.PacketsIn), sl...)
		ch <- counter(ipvsServiceOutPkts, float64(c.PacketsOut), sl...)
		ch <- counter(ipvsServiceInBytes, float64(c.BytesIn), sl...)
		ch <- counter(ipvsServiceOutBytes, float64(c.BytesOut), sl...)
		weights := make(map[ipvs.DestKey]int, len(sc.Programmed))
		for _, d := range sc.Programmed {
			weights[d.Key()] = d.Weight
		}
		for _, ds := range sc.Destinations {
			bl := []string{sc.Name, l.address, l.port, l.proto, l.mark, ds.Destination.Address.Unmap().String(), u16(ds.Destination.Port)}
			ch <- gauge(ipvsBackendActive, float64(ds.ActiveConnections), bl...)
			ch <- gauge(ipvsBackendInactive, float64(ds.InactiveConnections), bl...)
			if w, ok := weights[ds.Destination]; ok {
				ch <- gauge(ipvsBackendWeight, float64(w), bl...)
			}
			ch <- counter(ipvsBackendConns, float64(ds.Connections), bl...)
			ch <- counter(ipvsBackendInPkts, float64(ds.PacketsIn), bl...)
			ch <- counter(ipvsBackendOutPkts, float64(ds.PacketsOut), bl...)
			ch <- counter(ipvsBackendInBytes, float64(ds.BytesIn), bl...)
			ch <- counter(ipvsBackendOutBytes, float64(ds.BytesOut), bl...)
		}
	}
}

// realServerMetrics are every real server's committed state, read from the replica.
// They are built under the state's read lock and sent after it, so that a slow reader
// of the scrape never holds the lock that writes wait for.
func realServerMetrics(st *fsm.State) []prometheus.Metric {
	var out []prometheus.Metric
	st.Walk(func(svc *fsm.Service, servers []*fsm.RealServer) {
		l := localOfState(svc)
		for _, rs := range servers {
			bl := []string{svc.Name, l.address, l.port, l.proto, l.mark, rs.Addr.Unmap().String(), u16(rs.Port)}
			out = append(out,
				gauge(realServerState, 1, append(bl[:len(bl):len(bl)], string(rs.Health), string(rs.Admin))...),
				gauge(realServerWeight, float64(rs.Weight), bl...),
				gauge(realServerInRot, boolValue(rs.InRotation()), bl...))
		}
	})
	return out
}
