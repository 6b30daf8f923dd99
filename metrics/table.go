package metrics

import (
	"cmp"
	"slices"

	dto "github.com/prometheus/client_model/go"

	"github.com/raftlvs/raftlvs/director"
	"github.com/raftlvs/raftlvs/director/ipvs"
	"github.com/raftlvs/raftlvs/fsm"
)

// The IPVS table and the real servers' state are most of a large director's series
// (10,000 services × 10 real servers: 950,000). They are built here as metric families
// directly, in ipvsadm's order, each real server's label pairs shared by its nine series
// and its series allocated together, rather than as one const metric each that the
// registry then hashes, checks and sorts: a scrape of that table takes a few times less
// CPU and memory (BenchmarkScrape10kServices). The families are exactly what the
// registry would have produced; TestTableFamiliesPassTheRegistrysChecks holds them to it.

var (
	serviceLabelNames = newLabelSet(serviceLabels)
	backendLabelNames = newLabelSet(backendLabels)
	stateLabelNames   = newLabelSet(append(backendLabels[:len(backendLabels):len(backendLabels)], "health", "admin"))
)

// labelSet is a family's label names, in the order the values come, and where each goes
// among the pairs (sorted by name, as the registry sorts them).
type labelSet struct {
	names []*string
	slot  []int
}

func newLabelSet(names []string) labelSet {
	sorted := slices.Clone(names)
	slices.Sort(sorted)
	ls := labelSet{names: make([]*string, len(names)), slot: make([]int, len(names))}
	for i, n := range names {
		j := slices.Index(sorted, n)
		ls.names[i], ls.slot[i] = &sorted[j], j
	}
	return ls
}

// family is one metric family under construction.
func family(name, help string, typ dto.MetricType, capacity int) *dto.MetricFamily {
	full := namespace + "_" + name
	return &dto.MetricFamily{Name: &full, Help: &help, Type: &typ, Metric: make([]*dto.Metric, 0, capacity)}
}

// labeled holds one label set and the series that share it, allocated together.
type labeled[V any] struct {
	values []string
	pairs  []dto.LabelPair
	ptrs   []*dto.LabelPair
	series V
}

func (l *labeled[V]) init(set labelSet, values []string) {
	l.values = values
	l.pairs = make([]dto.LabelPair, len(values))
	l.ptrs = make([]*dto.LabelPair, len(values))
	for i := range values {
		j := set.slot[i]
		l.pairs[j].Name, l.pairs[j].Value = set.names[i], &l.values[i]
		l.ptrs[j] = &l.pairs[j]
	}
}

// serviceSeries are a service's five counters.
type serviceSeries struct {
	metrics [5]dto.Metric
	counts  [5]dto.Counter
	values  [5]float64
}

// backendSeries are a destination's three gauges and five counters.
type backendSeries struct {
	metrics [8]dto.Metric
	gauges  [3]dto.Gauge
	counts  [5]dto.Counter
	values  [8]float64
}

// stateSeries is a real server's state series.
type stateSeries struct {
	metric dto.Metric
	gauge  dto.Gauge
	one    float64
}

// ipvsFamilies are the IPVS counters of every programmed service and destination.
func ipvsFamilies(services []director.ServiceCounters) []*dto.MetricFamily {
	dests := 0
	for _, sc := range services {
		dests += len(sc.Destinations)
	}
	svc := [5]*dto.MetricFamily{
		family("ipvs_service_connections_total", "Connections scheduled by the IPVS service on this director since it was created.", dto.MetricType_COUNTER, len(services)),
		family("ipvs_service_incoming_packets_total", "Packets from clients to the IPVS service.", dto.MetricType_COUNTER, len(services)),
		family("ipvs_service_outgoing_packets_total", "Packets from the real servers back to clients through this director (near 0 for DR and TUN: replies bypass it).", dto.MetricType_COUNTER, len(services)),
		family("ipvs_service_incoming_bytes_total", "Bytes from clients to the IPVS service.", dto.MetricType_COUNTER, len(services)),
		family("ipvs_service_outgoing_bytes_total", "Bytes from the real servers back through this director (near 0 for DR and TUN).", dto.MetricType_COUNTER, len(services)),
	}
	be := [8]*dto.MetricFamily{
		family("ipvs_backend_connections_active", "Active connections to the real server in this director's IPVS table (a follower counts those the sync daemon copied to it).", dto.MetricType_GAUGE, dests),
		family("ipvs_backend_connections_inactive", "Inactive connections (FIN_WAIT, TIME_WAIT, …) to the real server in this director's IPVS table.", dto.MetricType_GAUGE, dests),
		family("ipvs_backend_weight", "Weight of the real server as programmed in the kernel (0 when draining or held out).", dto.MetricType_GAUGE, dests),
		family("ipvs_backend_connections_total", "Connections scheduled to the real server since it was added.", dto.MetricType_COUNTER, dests),
		family("ipvs_backend_incoming_packets_total", "Packets forwarded to the real server.", dto.MetricType_COUNTER, dests),
		family("ipvs_backend_outgoing_packets_total", "Packets from the real server back through this director (near 0 for DR and TUN).", dto.MetricType_COUNTER, dests),
		family("ipvs_backend_incoming_bytes_total", "Bytes forwarded to the real server.", dto.MetricType_COUNTER, dests),
		family("ipvs_backend_outgoing_bytes_total", "Bytes from the real server back through this director (near 0 for DR and TUN).", dto.MetricType_COUNTER, dests),
	}
	svcSeries := make([]labeled[serviceSeries], len(services))
	beSeries := make([]labeled[backendSeries], dests)
	next := 0
	for i, sc := range services {
		l := localOfKernel(sc.Service)
		s := &svcSeries[i]
		s.init(serviceLabelNames, []string{sc.Name, l.address, l.port, l.proto, l.mark})
		c := sc.Counters
		s.series.values = [5]float64{float64(c.Connections), float64(c.PacketsIn), float64(c.PacketsOut), float64(c.BytesIn), float64(c.BytesOut)}
		for k := range 5 {
			s.series.counts[k].Value = &s.series.values[k]
			s.series.metrics[k].Label, s.series.metrics[k].Counter = s.ptrs, &s.series.counts[k]
			svc[k].Metric = append(svc[k].Metric, &s.series.metrics[k])
		}
		weights := make(map[ipvs.DestKey]int, len(sc.Programmed))
		for _, d := range sc.Programmed {
			weights[d.Key()] = d.Weight
		}
		for _, ds := range sc.Destinations {
			b := &beSeries[next]
			next++
			b.init(backendLabelNames, []string{sc.Name, l.address, l.port, l.proto, l.mark, ds.Destination.Address.Unmap().String(), u16(ds.Destination.Port)})
			w, known := weights[ds.Destination]
			v := &b.series.values
			*v = [8]float64{float64(ds.ActiveConnections), float64(ds.InactiveConnections), float64(w),
				float64(ds.Connections), float64(ds.PacketsIn), float64(ds.PacketsOut), float64(ds.BytesIn), float64(ds.BytesOut)}
			for k := range 8 {
				m := &b.series.metrics[k]
				m.Label = b.ptrs
				if k < 3 {
					if k == 2 && !known {
						continue // a destination raftlvs did not program: no weight of its own
					}
					b.series.gauges[k].Value = &v[k]
					m.Gauge = &b.series.gauges[k]
				} else {
					b.series.counts[k-3].Value = &v[k]
					m.Counter = &b.series.counts[k-3]
				}
				be[k].Metric = append(be[k].Metric, m)
			}
		}
	}
	return append(svc[:], be[:]...)
}

// realServerRow is what the state family needs of one real server, read under the
// state's lock.
type realServerRow struct {
	service string
	local   local
	addr    string
	port    uint16
	health  fsm.Health
	admin   fsm.AdminState
}

// realServerRows reads every real server's committed state; the caller holds the lock.
func realServerRows(st *fsm.State) []realServerRow {
	var rows []realServerRow
	st.Walk(func(svc *fsm.Service, servers []*fsm.RealServer) {
		l := localOfState(svc)
		for _, rs := range servers {
			rows = append(rows, realServerRow{svc.Name, l, rs.Addr.Unmap().String(), rs.Port, rs.Health, rs.Admin})
		}
	})
	return rows
}

// stateFamily is raftlvs_real_server_state, in service and real-server order.
func stateFamily(rows []realServerRow) *dto.MetricFamily {
	slices.SortFunc(rows, func(a, b realServerRow) int {
		return cmp.Or(cmp.Compare(a.service, b.service), cmp.Compare(a.addr, b.addr), cmp.Compare(a.port, b.port))
	})
	f := family("real_server_state", "Always 1: the real server's committed health (up, down, unknown) and admin state (active, draining), from the replicated state.", dto.MetricType_GAUGE, len(rows))
	series := make([]labeled[stateSeries], len(rows))
	for i, r := range rows {
		s := &series[i]
		s.init(stateLabelNames, []string{r.service, r.local.address, r.local.port, r.local.proto, r.local.mark, r.addr, u16(r.port), string(r.health), string(r.admin)})
		s.series.one = 1
		s.series.gauge.Value = &s.series.one
		s.series.metric.Label, s.series.metric.Gauge = s.ptrs, &s.series.gauge
		f.Metric = append(f.Metric, &s.series.metric)
	}
	return f
}
