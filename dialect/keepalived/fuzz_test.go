package keepalived

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// fuzzLimits keep each input cheap: the fuzzer looks for panics and unbounded growth, not
// for large configurations.
var fuzzLimits = Limits{
	IncludeDepth: 4, Files: 8, FileBytes: 64 << 10, LineBytes: 4 << 10, ExpansionDepth: 8,
	Replacements: 10_000, Lines: 5_000, TotalBytes: 256 << 10, BlockDepth: 16, Services: 500, RealServers: 2000, Errors: 10,
}

// FuzzParse feeds the parser and translator arbitrary configurations, with a few files to
// include. They must never panic, every error must carry a class and a place, and every
// plan must apply to a fresh state.
func FuzzParse(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data string) {
		fsys := fstest.MapFS{
			"etc/keepalived/keepalived.conf":   {Data: []byte(data)},
			"etc/keepalived/conf.d/a.conf":     {Data: []byte("$RS= \\\n real_server 10.0.0.${N} 80 {\\\n }\n")},
			"etc/keepalived/conf.d/b.conf":     {Data: []byte("include ../keepalived.conf\n")},
			"etc/keepalived/conf.d/empty.conf": {Data: nil},
		}
		cfg, err := Parse(fsys, mainFile, Options{ConfigID: "main", Limits: fuzzLimits})
		if err != nil {
			checkFuzzError(t, err)
			return
		}
		lines := 0
		for _, n := range cfg.Nodes {
			lines += countNodes(n)
		}
		if lines > fuzzLimits.Lines*8 {
			t.Fatalf("%d statements from at most %d lines", lines, fuzzLimits.Lines)
		}
		plan, err := Translate(cfg, fuzzLimits)
		if err != nil {
			checkFuzzError(t, err)
			return
		}
		if len(plan.Services) > fuzzLimits.Services {
			t.Fatalf("%d services, beyond the limit %d", len(plan.Services), fuzzLimits.Services)
		}
		applyPlan(t, plan)
	})
}

func countNodes(n *Node) int {
	c := 1
	for _, k := range n.Block {
		c += countNodes(k)
	}
	return c
}

func checkFuzzError(t *testing.T, err error) {
	t.Helper()
	classes := []error{ErrSyntax, ErrUnknownKeyword, ErrInclude, ErrValue, ErrUnsupported, ErrLimit}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is no *Error", err)
	}
	known := false
	for _, c := range classes {
		known = known || errors.Is(err, c)
	}
	if !known {
		t.Fatalf("error %v has no class", err)
	}
	if e.Pos.File == "" || e.Pos.Line < 0 || e.Pos.Col < 0 {
		t.Fatalf("error %v has no place", err)
	}
}

// fuzzSeeds are the golden configurations and the preprocessor's corner cases.
func fuzzSeeds(f *testing.F) []string {
	seeds := []string{
		"include conf.d/*.conf\n~SEQ(N, 3) $RS\n",
		"include conf.d/b.conf\n",
		"$A=$A\n$A\n",
		"$A=x$A \n$A\n",
		"~SEQ(A, 1, 9223372036854775807) x\n",
		"~SEQx(N, 0x90, 0x10, 0xc0) a ${N}\n~LST({A,B}, {1,2}, 3) ${A}${B}\n",
		"@main $X=1\n@^main $X=2\nweight $X\n",
		"virtual_server_group G {\n 10.0.0.0/30 80\n fwmark 3\n}\nvirtual_server group G {\n protocol TCP\n persistence_timeout\n real_server 10.0.1.1 80 {\n TCP_CHECK {\n }\n }\n}\n",
		"virtual_server 192.0.2.1 80 { \"a\" 'b' \\\n}",
	}
	err := filepath.WalkDir(filepath.Join("testdata", "golden"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".conf") && !strings.HasSuffix(p, ".tmpl") {
			return err
		}
		b, err := os.ReadFile(p)
		seeds = append(seeds, string(b))
		return err
	})
	if err != nil {
		f.Fatal(err)
	}
	return seeds
}
