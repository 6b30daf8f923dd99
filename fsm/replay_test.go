package fsm_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/raftlvs/raftlvs/fsm"
	"github.com/raftlvs/raftlvs/fsm/fsmtest"
)

// leaderLog plays the leader over n generated commands: each is prepared when it can be
// and logged, or now and then logged raw, unchecked (as a racing write would be): both
// must replay the same. each, if set, sees every entry, its verdict, a copy of the state
// before and the state after it.
func leaderLog(t *testing.T, seed uint64, n int, each func(before, after *fsm.State, entry []byte, err error)) (*fsm.State, [][]byte) {
	t.Helper()
	g := fsmtest.New(seed)
	leader := fsm.NewState()
	var log [][]byte
	accepted, peakServers, peakVIPs := 0, 0, 0
	for range n {
		c := g.Command()
		if p, err := leader.Prepare(c); err == nil {
			c = p
		}
		entry, err := fsm.Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		log = append(log, entry)
		var before *fsm.State
		if each != nil {
			before = deepCopy(t, leader)
		}
		err = leader.Apply(entry)
		if err == nil {
			accepted++
		}
		if each != nil {
			each(before, leader, entry, err)
		}
		peakServers = max(peakServers, len(leader.AllRealServers()))
		peakVIPs = max(peakVIPs, len(leader.DeclaredVIPs()))
	}
	if accepted < 10 || peakServers == 0 || peakVIPs == 0 {
		t.Fatal("generator produced no accepted commands: the test proves nothing")
	}
	return leader, log
}

// deepCopy shares nothing with s: a command that changed a service or real server in place
// shows up against it.
func deepCopy(t *testing.T, s *fsm.State) *fsm.State {
	t.Helper()
	var buf bytes.Buffer
	if err := s.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	c, err := fsm.ReadSnapshot(&buf)
	if err != nil {
		t.Fatalf("read snapshot: %v", err)
	}
	return c
}

// TestSnapshotRestoreEqualsReplay pins down the Raft contract: a node restored from a
// snapshot taken at any point, then fed the rest of the log, ends equal to a node that
// replayed the whole log; and every replica applying the same log agrees.
func TestSnapshotRestoreEqualsReplay(t *testing.T) {
	for seed := range uint64(40) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			leader, log := leaderLog(t, seed, 150, nil)
			cut := int(seed) * len(log) / 40
			early := fsm.NewState()
			for _, e := range log[:cut] {
				_ = early.Apply(e)
			}
			restored := deepCopy(t, early)
			replica := fsm.NewState()
			for _, e := range log {
				_ = replica.Apply(e)
			}
			for _, e := range log[cut:] {
				_ = restored.Apply(e)
			}
			if !restored.Equal(leader) || !replica.Equal(leader) {
				t.Fatalf("states differ: leader v%d %d svcs, replica v%d, restored v%d",
					leader.Version(), len(leader.Services()), replica.Version(), restored.Version())
			}
			for _, s := range []*fsm.State{leader, replica, restored} {
				if err := fsm.CheckInvariants(s); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestRejectedEntryLeavesTheStateExactlyAsBefore: a command that fails, a batch or a staged
// commit halfway through included, is undone in place to a state identical to the one
// before, indexes and counters too.
func TestRejectedEntryLeavesTheStateExactlyAsBefore(t *testing.T) {
	for seed := range uint64(40) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rejected := 0
			leaderLog(t, seed, 150, func(before, after *fsm.State, entry []byte, err error) {
				if err == nil {
					return
				}
				rejected++
				if err := fsm.CheckIdentical(after, before); err != nil {
					t.Fatalf("rejected %s: %v", describe(entry), err)
				}
				if err := fsm.CheckInvariants(after); err != nil {
					t.Fatalf("rejected %s: %v", describe(entry), err)
				}
			})
			if rejected == 0 {
				t.Fatal("no command was rejected: the test proves nothing")
			}
		})
	}
}

// TestPrepareLeavesTheStateExactlyAsBefore: preparing a batch tries it on the state and
// undoes it; whatever the verdict the state is as it was.
func TestPrepareLeavesTheStateExactlyAsBefore(t *testing.T) {
	for seed := range uint64(20) {
		g := fsmtest.New(seed + 100)
		s := fsm.NewState()
		for range 150 {
			c := g.Command()
			before := deepCopy(t, s)
			p, err := s.Prepare(c)
			if err := fsm.CheckIdentical(s, before); err != nil {
				t.Fatalf("seed %d: Prepare(%T) changed the state: %v", seed, c, err)
			}
			if err == nil {
				_ = s.Execute(p)
			}
		}
	}
}

// TestJournalNamesEveryChangedService: after every entry, the changes read since the
// cursor before it name every service whose settings or real servers differ.
func TestJournalNamesEveryChangedService(t *testing.T) {
	for seed := range uint64(40) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			var cur fsm.Cursor
			var st *fsm.State
			leaderLog(t, seed, 150, func(before, _ *fsm.State, entry []byte, err error) {
				if st == nil {
					st = fsm.NewState()
					_, cur = st.ChangesSince(cur)
				}
				_ = st.Apply(entry)
				cs, next := st.ChangesSince(cur)
				cur = next
				if cs.All {
					t.Fatal("the journal gave up on a small entry")
				}
				touched := cs.Services()
				for _, name := range serviceNames(before, st) {
					if !sameService(before, st, name) {
						if _, ok := touched[name]; !ok {
							t.Fatalf("%s changed service %s; the journal says only %v", describe(entry), name, touched)
						}
					}
				}
				if again, _ := st.ChangesSince(cur); len(again.Changes) != 0 || again.All {
					t.Fatalf("read twice: %+v", again)
				}
			})
		})
	}
}

func serviceNames(states ...*fsm.State) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range states {
		for _, svc := range s.Services() {
			if !seen[svc.Name] {
				seen[svc.Name] = true
				out = append(out, svc.Name)
			}
		}
	}
	return out
}

func sameService(a, b *fsm.State, name string) bool {
	sa, oka := a.Service(name)
	sb, okb := b.Service(name)
	return oka == okb && fmt.Sprint(sa) == fmt.Sprint(sb) &&
		fmt.Sprint(a.RealServers(name)) == fmt.Sprint(b.RealServers(name))
}

func describe(entry []byte) string {
	c, err := fsm.Decode(entry)
	if err != nil {
		return fmt.Sprintf("undecodable entry: %v", err)
	}
	return fmt.Sprintf("%T %+v", c, c)
}
