package keepalived

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// shape prints a tree compactly: name(args){children}.
func shape(nodes []*Node) string {
	var parts []string
	for _, n := range nodes {
		s := n.Name.Text
		for _, a := range n.Args {
			s += " " + fmt.Sprintf("%q", a.Text)
		}
		if n.HasBlock {
			s += " {" + shape(n.Block) + "}"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

func parseString(t *testing.T, in string, opts Options) (*Config, error) {
	t.Helper()
	return Parse(memFS(map[string]string{mainFile: in}), mainFile, opts)
}

func TestTreeFollowsKeepalivedsBlockRules(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"brace on the keyword line", "a 1 {\n b 2\n}", `a "1" {b "2"}`},
		{"brace on the next line", "a 1\n{\n b 2\n}", `a "1" {b "2"}`},
		{"block on one line", "virtual_ipaddress { 10.0.0.1 10.0.0.2 }", `virtual_ipaddress {10.0.0.1 "10.0.0.2"}`},
		{"braces without blanks", "a{b}c", `a {b}; c`},
		{"nested", "a {\n b {\n  c\n }\n}\nd", `a {b {c}}; d`},
		{"closing then more", "a {\n b } c", `a {b}; c`},
		{"empty block", "a {\n}", `a {}`},
		{"double quotes join", `x ab" c "d`, `x "ab c d"`},
		{"single quotes join", `x 'a "b' c`, `x "a \"b" "c"`},
		{"quoted braces", `x "{a}" '}'`, `x "{a}" "}"`},
		{"backslash keeps the next byte", `regex ^ok\.\ \{x`, `regex "^ok\\.\\ \\{x"`},
		{"backslash inside quotes", `p "a\"b c"`, `p "a\\\"b c"`},
		{"empty quotes are a word", `x ""`, `x ""`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseString(t, tc.in, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := shape(cfg.Nodes); got != tc.want {
				t.Errorf("tree %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestTreeErrorsHaveTheirPlace(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		kind     error
		want     string
	}{
		{"extra closing brace", "a {\n}\n  }", ErrSyntax, "keepalived.conf:3:3: '}' closes no block"},
		{"block never closed", "x\nvirtual_server 10.0.0.1 80 {\n  real_server 10.0.1.1 80 {\n  }\n", ErrSyntax,
			"keepalived.conf:2:28: the block of virtual_server is not closed at the end of the configuration (open: virtual_server)"},
		{"brace first", "{\n}", ErrSyntax, ":1:1: '{' with no keyword before it"},
		{"two blocks", "a { } { }", ErrSyntax, ":1:7: '{' with no keyword"},
		{"unterminated double quote", `a "b c`, ErrSyntax, `:1:3: unterminated " quote`},
		{"unterminated single quote", "a\n b 'c", ErrSyntax, `:2:4: unterminated ' quote`},
		{"too deep", strings.Repeat("a {", 40), ErrLimit, "blocks nest deeper than 32"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseString(t, tc.in, Options{})
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %v containing %q", err, tc.kind, tc.want)
			}
		})
	}
}

func TestPositionsSurviveExpansion(t *testing.T) {
	in := "$W=5\n$RS= \\\n  real_server 10.0.0.${N} 80 {\\\n    weight $W \\\n  }\nvirtual_server 10.0.0.1 80 {\n  ~SEQ(N, 2) $RS\n}\n"
	cfg, err := parseString(t, in, Options{})
	if err != nil {
		t.Fatal(err)
	}
	vs := cfg.Nodes[0]
	if len(vs.Block) != 2 {
		t.Fatalf("tree %s", shape(cfg.Nodes))
	}
	rs := vs.Block[1]
	// A multi-line value keeps the places of its definition; a one-line value takes the
	// place of the reference.
	if got := rs.Name.Pos.String(); got != mainFile+":3:3" {
		t.Errorf("real_server at %s, want its definition's line 3", got)
	}
	if got := rs.Args[0].Text; got != "10.0.0.2" {
		t.Errorf("address %q", got)
	}
	if w := rs.Block[0].Args[0]; w.Text != "5" || w.Pos.String() != mainFile+":4:12" {
		t.Errorf("weight %q at %s, want 5 at the $W of line 4", w.Text, w.Pos)
	}
}

func TestSplitCommandAsKeepalived(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"/bin/check", []string{"/bin/check"}},
		{"/bin/check -p 80  -v", []string{"/bin/check", "-p", "80", "-v"}},
		{`/bin/check 'two words' "and more"`, []string{"/bin/check", "two words", "and more"}},
		{`/bin/x a'b c'd`, []string{"/bin/x", "ab cd"}},
		{`/bin/x \x41\102\tz \" \\ \cA`, []string{"/bin/x", "AB\tz", `"`, `\`, "\x01"}},
		{`/bin/x ''`, []string{"/bin/x", ""}},
	} {
		got, ok := splitCommand(tc.in)
		if !ok || fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tc.want) {
			t.Errorf("splitCommand(%q) = %q, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
	for _, bad := range []string{`/bin/x 'open`, `/bin/x \`} {
		if _, ok := splitCommand(bad); ok {
			t.Errorf("splitCommand(%q) accepted", bad)
		}
	}
}

func TestParseFileReadsTheMachinesFiles(t *testing.T) {
	cfg, err := ParseFile(filepath.Join("testdata", "golden", "web", "etc", "keepalived", "keepalived.conf"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The main file, services/http.conf, https.conf, mail.conf, conf.d/10-dns.conf,
	// 20-app.conf; not conf.d/README.
	if len(cfg.Files) != 6 || !filepath.IsAbs(cfg.Files[0]) || !strings.HasSuffix(cfg.Files[5], "/conf.d/20-app.conf") {
		t.Errorf("files read: %q", cfg.Files)
	}
	if p := cfg.Nodes[0].Pos(); p.File != cfg.Files[0] || p.Line != 3 || p.Col != 1 {
		t.Errorf("global_defs at %s", p)
	}
}
