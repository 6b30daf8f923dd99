package keepalived

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/raftlvs/raftlvs/dialect/ipvsadm"
	"github.com/raftlvs/raftlvs/fsm"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// goldenCases are the realistic configurations under testdata/golden/NAME/etc/keepalived/,
// each with the config id it is read with.
var goldenCases = []struct {
	name     string
	configID string
}{
	{"web", "lb1"},
	{"groups", "lb1"},
	{"templated", "main"},
	{"templated-backup", "backup"},
	{"ipv6", "lb1"},
}

// parseTestdata reads testdata/golden/DIR as if it were the root of a machine.
func parseTestdata(t testing.TB, dir, configID string) (*Config, error) {
	t.Helper()
	opts := Options{
		ConfigID:  configID,
		LookupEnv: func(k string) (string, bool) { v, ok := testEnv[k]; return v, ok },
	}
	return Parse(os.DirFS(filepath.Join("testdata", "golden", dir)), "/etc/keepalived/keepalived.conf", opts)
}

var testEnv = map[string]string{"LB_SITE": "ams1", "CHECK_DIR": "/usr/local/libexec"}

func TestGoldenPlans(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.name
			if d, _, ok := strings.Cut(tc.name, "-"); ok {
				dir = d // the same files read with another config id
			}
			cfg, err := parseTestdata(t, dir, tc.configID)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			plan, err := Translate(cfg, Limits{})
			if err != nil {
				t.Fatalf("translate:\n%v", err)
			}
			got := renderPlan(t, plan)
			file := filepath.Join("testdata", "golden", tc.name+".golden")
			if *update {
				if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("plan differs from %s (go test -update rewrites it):\n%s", file, lineDiff(string(want), got))
			}
		})
	}
}

// TestGoldenPlansApply proves each plan applies: the batch goes through the leader's
// Prepare and every director's Execute, as raftlvs import --apply would send it.
func TestGoldenPlansApply(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			dir, _, _ := strings.Cut(tc.name, "-")
			cfg, err := parseTestdata(t, dir, tc.configID)
			if err != nil {
				t.Fatal(err)
			}
			plan, err := Translate(cfg, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			st := applyPlan(t, plan)
			if got, want := len(st.Services()), len(plan.Services); got != want {
				t.Errorf("%d services in the state, want %d", got, want)
			}
			if got, want := len(st.AllRealServers()), len(plan.RealServers); got != want {
				t.Errorf("%d real servers in the state, want %d", got, want)
			}
			// The state, saved as ipvsadm -Sn, is what the plan renders.
			if got, want := saveRules(t, st.Services(), st.AllRealServers()), saveRules(t, plan.Services, plan.RealServers); got != want {
				t.Errorf("the applied state saves as\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func applyPlan(t testing.TB, plan *Plan) *fsm.State {
	t.Helper()
	st := fsm.NewState()
	prepared, err := st.Prepare(plan.Batch())
	if err != nil {
		t.Fatalf("prepare the plan's batch: %v", err)
	}
	if err := st.Execute(prepared); err != nil {
		t.Fatalf("execute the plan's batch: %v", err)
	}
	return st
}

func saveRules(t testing.TB, services []fsm.Service, servers []fsm.RealServer) string {
	t.Helper()
	var b strings.Builder
	if err := ipvsadm.New(services, servers).Write(&b); err != nil {
		t.Fatalf("write ipvsadm rules: %v", err)
	}
	return b.String()
}

// serviceSettings is what ipvsadm -Sn does not show of a service.
type serviceSettings struct {
	Name        string           `json:"name"`
	OnDown      fsm.DownAction   `json:"on_down"`
	Quorum      int              `json:"quorum,omitempty"`
	Hysteresis  int              `json:"hysteresis,omitempty"`
	SorryServer string           `json:"sorry_server,omitempty"`
	HealthCheck *fsm.HealthCheck `json:"health_check,omitempty"`
}

// serverSettings is what ipvsadm -Sn does not show of a real server; only those with any
// are listed.
type serverSettings struct {
	Service     string           `json:"service"`
	Server      string           `json:"server"`
	Upper       uint32           `json:"upper_threshold,omitempty"`
	Lower       uint32           `json:"lower_threshold,omitempty"`
	HealthCheck *fsm.HealthCheck `json:"health_check,omitempty"`
}

// renderPlan prints a plan for review: the IPVS rules as ipvsadm -Sn would list them, the
// rest of the settings as YAML, the VIPs and the report.
func renderPlan(t testing.TB, plan *Plan) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# ipvsadm -Sn\n")
	b.WriteString(saveRules(t, plan.Services, plan.RealServers))
	var svcs []serviceSettings
	for _, s := range plan.Services {
		ss := serviceSettings{Name: s.Name, OnDown: s.OnDown, Quorum: s.Quorum, Hysteresis: s.Hysteresis, HealthCheck: s.HealthCheck}
		if s.SorryServer.IsValid() {
			ss.SorryServer = s.SorryServer.String()
		}
		svcs = append(svcs, ss)
	}
	var rss []serverSettings
	for _, r := range plan.RealServers {
		if r.UpperThreshold == 0 && r.LowerThreshold == 0 && r.HealthCheck == nil {
			continue
		}
		rss = append(rss, serverSettings{Service: r.Service, Server: fmt.Sprintf("%s port %d", r.Addr, r.Port), Upper: r.UpperThreshold, Lower: r.LowerThreshold, HealthCheck: r.HealthCheck})
	}
	for _, part := range []struct {
		title string
		v     any
	}{{"services", svcs}, {"real servers with settings of their own", rss}, {"vips", plan.VIPs}} {
		fmt.Fprintf(&b, "# %s\n", part.title)
		if y, err := yaml.Marshal(part.v); err != nil {
			t.Fatal(err)
		} else if string(y) != "null\n" {
			b.Write(y)
		}
	}
	b.WriteString("# report\n")
	for _, f := range plan.Report {
		b.WriteString(f.String() + "\n")
	}
	return b.String()
}

// lineDiff shows the first lines where want and got part.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return fmt.Sprintf("line %d:\n  want %q\n  got  %q", i+1, a, b)
		}
	}
	return "(same lines)"
}
