package declarative

import (
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/raftlvs/raftlvs/fsm"
	"github.com/raftlvs/raftlvs/fsm/plan"
)

// cluster is a state built through the fsm's own commands, as a cluster would hold it.
func cluster(t *testing.T, cmds ...fsm.Command) *fsm.State {
	t.Helper()
	st := fsm.NewState()
	for _, c := range cmds {
		p, err := st.Prepare(c)
		if err != nil {
			t.Fatalf("prepare %T: %v", c, err)
		}
		if err := st.Execute(p); err != nil {
			t.Fatalf("execute %T: %v", c, err)
		}
	}
	return st
}

var (
	vip = netip.MustParseAddr("192.0.2.10")
	// Every setting of a service, the health check with a comma in a regular expression
	// (which the text form cannot hold: it goes as JSON).
	web = fsm.Service{
		Name: "web", Protocol: fsm.TCP, VIP: vip, Port: 80, Scheduler: "sh", SchedFlags: []string{fsm.FlagSHFallback, fsm.FlagSHPort},
		Persistence: 300, PersistMask: 24, Forwarding: fsm.DR,
		HealthCheck: &fsm.HealthCheck{Type: fsm.CheckHTTP, Path: "/healthz", Status: []string{"200-299"}, BodyRegex: "ok,ready", IntervalMS: 1500, Fall: 2},
		OnDown:      fsm.DownInhibit, FailOpenPercent: 50, Quorum: 3, Hysteresis: 1, SorryServer: netip.MustParseAddrPort("198.51.100.99:8080"),
	}
	dns  = fsm.Service{Name: "dns", Protocol: fsm.UDP, VIP: vip, Port: 53, OnePacket: true, HealthCheck: &fsm.HealthCheck{Type: fsm.CheckDNS, Query: "example.org"}}
	mark = fsm.Service{Name: "mark6", FWMark: 7, Family: fsm.IPv6, Scheduler: "rr"}
)

func realServer(svc string, addr string, weight int) fsm.RealServer {
	return fsm.RealServer{Service: svc, Addr: netip.MustParseAddr(addr), Weight: weight, Origin: fsm.OriginOperator}
}

func sample(t *testing.T) *fsm.State {
	own := realServer("web", "198.51.100.22", 0)
	own.HealthCheck = &fsm.HealthCheck{Type: fsm.CheckTCP, Port: 8080}
	tun := realServer("web", "198.51.100.23", 7)
	tun.Forwarding, tun.UpperThreshold, tun.LowerThreshold = fsm.TUN, 100, 10
	agent := realServer("web", "198.51.100.30", 5)
	agent.Origin = fsm.AgentOrigin("rs30")
	return cluster(t,
		fsm.AddService{Service: web}, fsm.AddService{Service: dns}, fsm.AddService{Service: mark},
		fsm.AddRealServer{RealServer: realServer("web", "198.51.100.21", 10)},
		fsm.AddRealServer{RealServer: own}, fsm.AddRealServer{RealServer: tun},
		fsm.UpsertAgentRS{RealServer: agent},
		fsm.AddRealServer{RealServer: realServer("dns", "198.51.100.31", 1)},
		fsm.AddRealServer{RealServer: realServer("mark6", "2001:db8::31", 1)},
		fsm.SetHealth{Key: fsm.RSKey{Service: "web", Addr: netip.MustParseAddr("198.51.100.21"), Port: 80}, Health: fsm.HealthDown, Reason: "HTTP 503"},
	)
}

// TestExportThenParseIsTheSameTable: the document of a cluster, written and read back,
// plans no change against that cluster, and names the agent's server apart.
func TestExportThenParseIsTheSameTable(t *testing.T) {
	st := sample(t)
	doc, agents := Export(st.Services(), st.AllRealServers())
	if len(agents) != 1 || agents[0].Origin != "agent:rs30" {
		t.Errorf("agents' servers %+v, want rs30's apart", agents)
	}
	data, err := doc.Marshal("a header\nof two lines")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "# a header\n# of two lines\n") {
		t.Errorf("no header comment:\n%s", data)
	}
	back, err := Parse(data)
	if err != nil {
		t.Fatalf("parse the export: %v\n%s", err, data)
	}
	table, err := back.Table()
	if err != nil {
		t.Fatal(err)
	}
	changes := plan.Against(table, st.Services(), st.AllRealServers(), plan.Options{Prune: true})
	if len(changes.Steps) != 0 {
		t.Errorf("export, then apply of it, would change:\n%v\nthe document:\n%s", changes.Steps, data)
	}
	if changes.UnchangedServices != 3 || changes.UnchangedServers != 5 || len(changes.AgentServers) != 1 {
		t.Errorf("unchanged %d services %d servers, agents' %d; want 3, 5, 1", changes.UnchangedServices, changes.UnchangedServers, len(changes.AgentServers))
	}
	text := string(data)
	for _, want := range []string{"check: tcp,port=8080", "check: dns,query=example.org", "body_regex: ok,ready"} {
		if !strings.Contains(text, want) {
			t.Errorf("the document lacks %q:\n%s", want, text)
		}
	}
	for _, not := range []string{"health:", "origin", "198.51.100.30", "admin", "quorum_down"} {
		if strings.Contains(text, not) {
			t.Errorf("the document carries %q, the cluster's own:\n%s", not, text)
		}
	}
}

// TestTheDocumentReadsAsWritten pins the layout: a service's name first, its real servers
// last, the check in its text form.
func TestTheDocumentReadsAsWritten(t *testing.T) {
	st := cluster(t,
		fsm.AddService{Service: fsm.Service{Name: "web", Protocol: fsm.TCP, VIP: vip, Port: 80, Scheduler: "wrr",
			HealthCheck: &fsm.HealthCheck{Type: fsm.CheckHTTP, Path: "/healthz", Fall: 2}}},
		fsm.AddRealServer{RealServer: realServer("web", "198.51.100.21", 10)},
	)
	doc, _ := Export(st.Services(), st.AllRealServers())
	data, err := doc.Marshal("")
	if err != nil {
		t.Fatal(err)
	}
	want := `version: 1
services:
- name: web
  protocol: tcp
  vip: 192.0.2.10
  port: 80
  family: ipv4
  scheduler: wrr
  persist_mask: 32
  forwarding: nat
  on_down: remove
  check: http:/healthz,fall=2
  real_servers:
  - addr: 198.51.100.21
    port: 80
    weight: 10
`
	if string(data) != want {
		t.Errorf("got\n%s\nwant\n%s", data, want)
	}
}

func TestABadDocumentSaysWhatAndWhere(t *testing.T) {
	ok := "version: 1\nservices:\n- name: web\n  protocol: tcp\n  vip: 192.0.2.10\n  port: 80\n"
	tests := []struct {
		name, doc, want string
	}{
		{"not YAML", "services: [", "bad raftlvs document"},
		{"unknown key", ok + "  colour: red\n", `unknown field "colour"`},
		{"unknown key of a real server", ok + "  real_servers:\n  - addr: 198.51.100.21\n    health: up\n", `unknown field "health"`},
		{"no version", "services: []\n", "version 0"},
		{"another version", "version: 2\nservices: []\n", "version 2"},
		{"an unknown scheduler", ok + "  scheduler: fastest\n", "services[0] (web): scheduler"},
		{"a port out of range", "version: 1\nservices:\n- protocol: tcp\n  vip: 192.0.2.10\n  port: 70000\n", "bad raftlvs document"},
		{"check and health_check", ok + "  check: tcp\n  health_check: {type: tcp}\n", "check or health_check, not both"},
		{"a check that does not parse", ok + "  check: http,colour=blue\n", `services[0] (web): check: unknown key "colour"`},
		{"two services of one name", ok + "- name: web\n  protocol: udp\n  vip: 192.0.2.10\n  port: 53\n", "the name web is services[0]'s too"},
		{"two services of one match", ok + "- name: www\n  protocol: tcp\n  vip: 192.0.2.10\n  port: 80\n", "TCP 192.0.2.10:80 is matched by services[0] too"},
		{"a real server of another family", ok + "  real_servers:\n  - addr: 2001:db8::1\n", "services[0] (web): real_servers[0]: addr"},
		{"a real server twice", ok + "  real_servers:\n  - addr: 198.51.100.21\n  - addr: 198.51.100.21\n    port: 80\n", "198.51.100.21:80 is real_servers[0] too"},
		{"a real server without its address", ok + "  real_servers:\n  - weight: 3\n", "real_servers[0]: addr: required"},
		{"a negative weight", ok + "  real_servers:\n  - addr: 198.51.100.21\n    weight: -1\n", "real_servers[0]: weight"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			if err == nil || !errors.Is(err, ErrBadDocument) || !errors.Is(err, fsm.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %v, want ErrBadDocument (invalid) saying %q", err, tt.want)
			}
		})
	}
	if _, err := Parse([]byte(ok)); err != nil {
		t.Errorf("the good document: %v", err)
	}
}

// TestEveryRealServerSettingIsTheFilesOrTheClusters guards the document against a new
// fsm.RealServer field: each is either written in the file or named the cluster's own.
func TestEveryRealServerSettingIsTheFilesOrTheClusters(t *testing.T) {
	carried := jsonFields(reflect.TypeFor[RealServer]())
	for _, f := range jsonFields(reflect.TypeFor[fsm.RealServer]()) {
		if !slices.Contains(carried, f) && !slices.Contains(stateFields, f) {
			t.Errorf("fsm.RealServer's %q is neither in the document's RealServer nor in stateFields: decide which", f)
		}
	}
}

func jsonFields(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}

// TestAnExportOfAServiceWithAllItsSettingsKeepsThemAll: through the document and back,
// every field of fsm.Service is as it was (but the state's quorum verdict).
func TestAnExportOfAServiceWithAllItsSettingsKeepsThemAll(t *testing.T) {
	st := sample(t)
	doc, _ := Export(st.Services(), st.AllRealServers())
	data, _ := doc.Marshal("")
	back, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	table, _ := back.Table()
	for i, want := range st.Services() {
		want.QuorumDown = false
		a, _ := json.Marshal(want)
		b, _ := json.Marshal(table.Services[i])
		if string(a) != string(b) {
			t.Errorf("service %s:\n got %s\nwant %s", want.Name, b, a)
		}
	}
}

func TestTheExampleFileReads(t *testing.T) {
	data, err := os.ReadFile("../../deploy/examples/lb.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := Parse(data)
	if err != nil {
		t.Fatalf("deploy/examples/lb.yaml: %v", err)
	}
	table, _ := doc.Table()
	if len(table.Services) != 3 || len(table.RealServers) != 7 {
		t.Errorf("%d services, %d real servers; want 3 and 7", len(table.Services), len(table.RealServers))
	}
	// And the cluster would take it as a whole.
	b := fsm.Batch{}
	for _, c := range plan.Against(table, nil, nil, plan.Options{}).Commands() {
		b.Commands = append(b.Commands, c)
	}
	if _, err := fsm.NewState().Prepare(b); err != nil {
		t.Errorf("the example's batch: %v", err)
	}
}
