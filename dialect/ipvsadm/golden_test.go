package ipvsadm

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/raftlvs/raftlvs/fsm"
)

// canonical lists the golden rule sets that are already in ipvsadm -S -n form.
var canonical = []string{"anchors-example.rules", "realistic.rules"}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeString(t testing.TB, r *Rules) string {
	t.Helper()
	var b strings.Builder
	if err := r.Write(&b); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return b.String()
}

func TestParseThenWriteReproducesIPVSAdmSave(t *testing.T) {
	for _, name := range canonical {
		t.Run(name, func(t *testing.T) {
			want := readTestdata(t, name)
			rules, err := Parse(bytes.NewReader(want))
			if err != nil {
				t.Fatal(err)
			}
			if got := writeString(t, rules); got != string(want) {
				t.Errorf("Write after Parse differs:\n%s", lineDiff(string(want), got))
			}
		})
	}
}

// TestRestoreThenSaveThroughState is `raftlvs restore` followed by `raftlvs save`: the
// commands go through the fsm as the leader would log them, and the state is written back.
func TestRestoreThenSaveThroughState(t *testing.T) {
	for _, name := range canonical {
		t.Run(name, func(t *testing.T) {
			want := readTestdata(t, name)
			rules, err := Parse(bytes.NewReader(want))
			if err != nil {
				t.Fatal(err)
			}
			state := applyAll(t, rules.Commands())
			saved := New(state.Services(), state.AllRealServers())
			if got := writeString(t, saved); got != string(want) {
				t.Errorf("save after restore differs:\n%s", lineDiff(string(want), got))
			}
		})
	}
}

func applyAll(t testing.TB, cmds []fsm.Command) *fsm.State {
	t.Helper()
	state := fsm.NewState()
	for i, c := range cmds {
		prepared, err := state.Prepare(c)
		if err != nil {
			t.Fatalf("prepare command %d (%T): %v", i, c, err)
		}
		if err := state.Execute(prepared); err != nil {
			t.Fatalf("execute command %d (%T): %v", i, c, err)
		}
	}
	return state
}

func TestCommandsAddEachServiceBeforeItsRealServers(t *testing.T) {
	rules, err := Parse(bytes.NewReader(readTestdata(t, "anchors-example.rules")))
	if err != nil {
		t.Fatal(err)
	}
	cmds := rules.Commands()
	if len(cmds) != len(rules.Services)+len(rules.RealServers) {
		t.Fatalf("%d commands for %d services and %d real servers", len(cmds), len(rules.Services), len(rules.RealServers))
	}
	var order []string
	current := ""
	for _, c := range cmds {
		switch c := c.(type) {
		case fsm.AddService:
			current = c.Service.Name
			order = append(order, "A "+current)
		case fsm.AddRealServer:
			if c.RealServer.Service != current {
				t.Errorf("real server %s of %s comes after service %s", c.RealServer.Addr, c.RealServer.Service, current)
			}
			order = append(order, "a "+c.RealServer.Addr.String())
		default:
			t.Fatalf("unexpected command %T", c)
		}
	}
	want := []string{
		"A tcp-192.0.2.10-80", "a 198.51.100.21", "a 198.51.100.22",
		"A tcp-192.0.2.11-443", "a 198.51.100.41",
		"A udp-192.0.2.10-53", "a 198.51.100.31",
		"A udp-192.0.2.12-5060", "a 198.51.100.71",
		"A tcp-2001:db8::10-80", "a 2001:db8::21",
		"A fwm-100", "a 198.51.100.51",
		"A fwm6-200", "a 2001:db8::51",
	}
	if strings.Join(order, "\n") != strings.Join(want, "\n") {
		t.Errorf("commands:\n%s\nwant:\n%s", strings.Join(order, "\n"), strings.Join(want, "\n"))
	}
}

func TestParseCanonicalizesHandWrittenInput(t *testing.T) {
	rules, err := Parse(bytes.NewReader(readTestdata(t, "messy.input")))
	if err != nil {
		t.Fatal(err)
	}
	want := string(readTestdata(t, "messy.golden"))
	if got := writeString(t, rules); got != want {
		t.Errorf("Write differs from messy.golden:\n%s", lineDiff(want, got))
	}
}

// The §4.2 example of anchors-keepalived.md has a GUE tunnel, which raftlvs cannot program.
func TestAnchorsExampleWithGUEIsRejected(t *testing.T) {
	_, err := Parse(bytes.NewReader(readTestdata(t, "anchors-example-gue.rules")))
	var le *LineError
	if !errors.As(err, &le) || le.Line != 7 || !errors.Is(err, fsm.ErrInvalid) ||
		!strings.Contains(err.Error(), "--tun-type: gue tunnels are not supported") {
		t.Fatalf("error = %v, want line 7 rejected for its gue tunnel", err)
	}
}

// lineDiff shows the first lines where two texts part.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 8; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + strconv.Itoa(i+1) + ":\n  want " + wl + "\n  got  " + gl + "\n")
			shown++
		}
	}
	return b.String()
}
