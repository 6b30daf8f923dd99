package ipvs

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/raftlvs/raftlvs/fsm"
	"github.com/raftlvs/raftlvs/fsm/fsmtest"
)

// TestIncrementalSyncEqualsFullRecomputation pins down the reconciler's shortcut: after
// any generated command, or several at once (watch signals coalesce), or a snapshot
// restore, the table it keeps by recomputing only the services the journal names equals
// Desired computed afresh, and the kernel holds exactly that.
func TestIncrementalSyncEqualsFullRecomputation(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			g := fsmtest.New(seed)
			h := newHarness(t)
			h.sync()
			incremental := 0
			for range 150 {
				c := g.Command()
				if p, err := h.st.Prepare(c); err == nil {
					c = p
				}
				_ = h.st.Execute(c)
				switch g.IntN(12) {
				case 0:
					continue // the next pass sees two entries at once
				case 1:
					h.st = restored(t, h.st) // another State: the reconciler starts over
				}
				p := h.sync()
				if p.Kind == "sync" && len(h.r.desired) > 0 {
					incremental++
				}
				assertSameTable(t, h.r.desired, Desired(h.st))
				h.assertProgrammed()
			}
			h.sync() // the last command may have been left for the next pass
			assertSameTable(t, h.r.desired, Desired(h.st))
			if incremental < 40 {
				t.Fatalf("only %d incremental passes over a non-empty table: the test proves little", incremental)
			}
			h.assertIdle()
		})
	}
}

func restored(t *testing.T, st *fsm.State) *fsm.State {
	t.Helper()
	var buf bytes.Buffer
	if err := st.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	r, err := fsm.ReadSnapshot(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func assertSameTable(t *testing.T, got, want Table) {
	t.Helper()
	for k, w := range want {
		g := got[k]
		if g == nil || g.Name != w.Name || g.Sorry != w.Sorry || !g.Equal(w) {
			t.Fatalf("service %s: followed %+v, recomputed %+v", k, g, w)
		}
	}
	for k, g := range got {
		if want[k] == nil {
			t.Fatalf("followed table holds %s (%s), which the state does not", k, g.Name)
		}
	}
}
