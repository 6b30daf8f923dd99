package daemon

import (
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// These tests pin the house's structure with `go list`: what each layer may import.
// They run the go command, so they need it on PATH (make test has it).

const module = "github.com/raftlvs/raftlvs"

// deps lists the packages pkg links (its transitive imports, tests excluded).
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", pkg).Output()
	if err != nil {
		t.Skipf("go list %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

// imports lists pkg's direct imports of this module's packages, tests excluded.
func imports(t *testing.T, pattern string) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports", pattern).Output()
	if err != nil {
		t.Skipf("go list %s: %v", pattern, err)
	}
	got := map[string][]string{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, module+"/") {
				got[p.ImportPath] = append(got[p.ImportPath], strings.TrimPrefix(imp, module+"/"))
			}
		}
	}
	return got
}

func TestTheAgentLinksNeitherRaftNorBolt(t *testing.T) {
	for _, pkg := range []string{module + "/realserver", module + "/api", module + "/pki", module + "/pki/enroll"} {
		for _, d := range deps(t, pkg) {
			if strings.Contains(d, "hashicorp/raft") || strings.Contains(d, "bbolt") || strings.Contains(d, "boltdb") {
				t.Errorf("%s links %s", pkg, d)
			}
		}
	}
}

func TestTheAPIContractImportsOnlyFSM(t *testing.T) {
	for pkg, imps := range imports(t, module+"/api") {
		for _, imp := range imps {
			if imp != "fsm" {
				t.Errorf("%s imports %s: the API contract is a leaf over fsm", pkg, imp)
			}
		}
	}
}

func TestLayersImportDownwardOnly(t *testing.T) {
	// What each layer must never import (by path prefix within the module).
	forbidden := map[string][]string{
		"fsm":        {"api", "cluster", "director", "realserver", "daemon", "dialect", "cmd"},
		"cluster":    {"director", "realserver", "daemon", "cmd"},
		"director":   {"cluster/apiserver", "daemon", "realserver", "cmd"},
		"realserver": {"cluster/apiserver", "director", "daemon", "cmd"},
		"dialect":    {"cluster", "director", "realserver", "daemon", "cmd"},
		"pki":        {"cluster", "director", "realserver", "daemon", "dialect", "cmd"},
	}
	for pkg, imps := range imports(t, module+"/...") {
		rel := strings.TrimPrefix(pkg, module+"/")
		for layer, bad := range forbidden {
			if rel != layer && !strings.HasPrefix(rel, layer+"/") {
				continue
			}
			for _, imp := range imps {
				if slices.ContainsFunc(bad, func(b string) bool { return imp == b || strings.HasPrefix(imp, b+"/") }) {
					t.Errorf("%s imports %s", rel, imp)
				}
			}
		}
	}
}
