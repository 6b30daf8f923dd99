package metrics

import (
	"bytes"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/raftlvs/raftlvs/director"
	"github.com/raftlvs/raftlvs/director/ipvs"
	"github.com/raftlvs/raftlvs/fsm"
)

func smallTable() []director.ServiceCounters {
	v6 := netip.MustParseAddr("2001:db8::10")
	return []director.ServiceCounters{
		{Name: "web", Service: fakeSvc, Counters: ipvs.Counters{Connections: 7, PacketsIn: 1 << 40, BytesOut: 3},
			Destinations: []ipvs.DestinationStats{
				{Destination: ipvs.DestKey{Address: fakeRS, Port: 80}, ActiveConnections: 2, Counters: ipvs.Counters{BytesIn: 1 << 50}},
				{Destination: ipvs.DestKey{Address: netip.MustParseAddr("10.0.1.9"), Port: 80}, InactiveConnections: 4}, // not programmed: no weight
			},
			Programmed: []ipvs.Destination{{Address: fakeRS, Port: 80, Weight: 5}}},
		{Name: "mark", Service: ipvs.Service{Family: ipvs.FamilyIPv4, FWMark: 100},
			Destinations: []ipvs.DestinationStats{{Destination: ipvs.DestKey{Address: fakeRS, Port: 0}}},
			Programmed:   []ipvs.Destination{{Address: fakeRS, Weight: 1}}},
		{Name: "dns6", Service: ipvs.Service{Family: ipvs.FamilyIPv6, Protocol: ipvs.ProtocolUDP, Address: v6, Port: 53},
			Destinations: []ipvs.DestinationStats{{Destination: ipvs.DestKey{Address: netip.MustParseAddr("2001:db8::21"), Port: 53}}},
			Programmed:   []ipvs.Destination{{Address: netip.MustParseAddr("2001:db8::21"), Port: 53, Weight: 2}}},
	}
}

// constTable is the same series the registry's way, one const metric each.
type constTable struct {
	services []director.ServiceCounters
	rows     []realServerRow
}

func (constTable) Describe(chan<- *prometheus.Desc) {}

func (c constTable) Collect(ch chan<- prometheus.Metric) {
	svc := func(n, h string) *prometheus.Desc { return desc(n, h, serviceLabels...) }
	be := func(n, h string) *prometheus.Desc { return desc(n, h, backendLabels...) }
	for _, f := range ipvsFamilies(c.services) { // the same names and help, the registry's way
		for _, m := range f.Metric {
			var values []string
			names := map[string]string{}
			for _, l := range m.Label {
				names[l.GetName()] = l.GetValue()
			}
			labels := serviceLabels
			d := svc(strings.TrimPrefix(f.GetName(), namespace+"_"), f.GetHelp())
			if _, ok := names["remote_address"]; ok {
				labels = backendLabels
				d = be(strings.TrimPrefix(f.GetName(), namespace+"_"), f.GetHelp())
			}
			for _, l := range labels {
				values = append(values, names[l])
			}
			if f.GetType() == dto.MetricType_COUNTER {
				ch <- counter(d, m.Counter.GetValue(), values...)
			} else {
				ch <- gauge(d, m.Gauge.GetValue(), values...)
			}
		}
	}
	state := desc("real_server_state", "Always 1: the real server's committed health (up, down, unknown) and admin state (active, draining), from the replicated state.", append(backendLabels, "health", "admin")...)
	for _, r := range c.rows {
		ch <- gauge(state, 1, r.service, r.local.address, r.local.port, r.local.proto, r.local.mark, r.addr, u16(r.port), string(r.health), string(r.admin))
	}
}

func text(t *testing.T, fams []*dto.MetricFamily) []string {
	t.Helper()
	var b bytes.Buffer
	for _, f := range fams {
		if _, err := expfmt.MetricFamilyToText(&b, f); err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	slices.Sort(lines)
	return lines
}

func TestTableFamiliesPassTheRegistrysChecksAndEqualItsOwn(t *testing.T) {
	rows := []realServerRow{
		{service: "web", local: localOfKernel(fakeSvc), addr: "10.0.1.2", port: 80, health: fsm.HealthDown, admin: fsm.Active},
		{service: "web", local: localOfKernel(fakeSvc), addr: "10.0.1.1", port: 80, health: fsm.HealthUp, admin: fsm.Draining},
	}
	built := append(ipvsFamilies(smallTable()), stateFamily(slices.Clone(rows)))
	// Gatherers runs the registry's checks on what a Gatherer hands it: valid names,
	// label pairs sorted and consistent with the family, no duplicate series.
	checked, err := prometheus.Gatherers{prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return built, nil })}.Gather()
	if err != nil {
		t.Fatalf("the registry refuses the table's families: %v", err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(constTable{smallTable(), rows})
	want, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got, w := text(t, checked), text(t, want)
	if !slices.Equal(got, w) {
		t.Errorf("table families differ from the registry's:\n got %q\nwant %q", got, w)
	}
	for _, line := range []string{
		`raftlvs_ipvs_backend_incoming_bytes_total{local_address="192.0.2.10",local_mark="",local_port="80",proto="TCP",remote_address="10.0.1.1",remote_port="80",service="web"} 1.125899906842624e+15`,
		`raftlvs_ipvs_backend_weight{local_address="",local_mark="100",local_port="0",proto="FWM",remote_address="10.0.1.1",remote_port="0",service="mark"} 1`,
		`raftlvs_ipvs_service_connections_total{local_address="2001:db8::10",local_mark="",local_port="53",proto="UDP",service="dns6"} 0`,
	} {
		if !slices.Contains(got, line) {
			t.Errorf("missing %s", line)
		}
	}
	for _, l := range got {
		if strings.Contains(l, "10.0.1.9") && strings.HasPrefix(l, "raftlvs_ipvs_backend_weight") {
			t.Errorf("a destination raftlvs did not program has a weight: %s", l)
		}
	}
}
