package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

var stageTime = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// restoreChunks is a restore of services × 3 real servers cut into chunks of per services,
// each service with its real servers in one chunk, as the CLI cuts them.
func restoreChunks(first, services, per int) [][]Command {
	var chunks [][]Command
	for i := first; i < first+services; i++ {
		if (i-first)%per == 0 {
			chunks = append(chunks, nil)
		}
		name := fmt.Sprintf("svc%d", i)
		c := &chunks[len(chunks)-1]
		*c = append(*c, AddService{Service: Service{Name: name, Protocol: TCP, VIP: netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), Port: 80}})
		for j := range 3 {
			*c = append(*c, AddRealServer{RealServer: RealServer{Service: name, Addr: netip.AddrFrom4([4]byte{198, 51, 100, byte(j + 1)}), Weight: 1}})
		}
	}
	return chunks
}

func stage(t *testing.T, s *State, tx string, seq int, cmds []Command) {
	t.Helper()
	mustApply(t, s, StageChunk{Tx: tx, Seq: seq, At: stageTime, Commands: cmds})
}

func snapshotRoundTrip(t *testing.T, s *State) *State {
	t.Helper()
	var buf bytes.Buffer
	if err := s.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	r, err := ReadSnapshot(&buf)
	if err != nil {
		t.Fatalf("read snapshot: %v", err)
	}
	return r
}

func TestStagedChunksApplyOnlyOnCommitInSequenceOrder(t *testing.T) {
	s := NewState()
	chunks := restoreChunks(0, 9, 3)
	// Staged out of order (a client sending several at once): applied in sequence order.
	for _, seq := range []int{2, 0, 1} {
		stage(t, s, "restore-1", seq, chunks[seq])
	}
	if len(s.Services()) != 0 {
		t.Fatal("staged commands were applied before the commit")
	}
	info := s.Staged()
	if len(info) != 1 || info[0].Commands != 36 || fmt.Sprint(info[0].Chunks) != "[0 1 2]" {
		t.Fatalf("staged: %+v", info)
	}
	// Staged data survives a snapshot, which then needs the newer format.
	var buf bytes.Buffer
	if err := s.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), `{"format":2,`) {
		t.Fatalf("snapshot with staged data starts %.20q", buf.String())
	}
	restored := snapshotRoundTrip(t, s)
	if !restored.Equal(s) {
		t.Fatal("staged data changed across a snapshot")
	}
	for _, st := range []*State{s, restored} {
		mustApply(t, st, CommitStaged{Tx: "restore-1", Chunks: 3})
		if got := len(st.Services()); got != 9 || len(st.AllRealServers()) != 27 || len(st.Staged()) != 0 || st.stagedCommands != 0 {
			t.Fatalf("after the commit: %d services, %d real servers, staged %+v", got, len(st.AllRealServers()), st.Staged())
		}
	}
	// The real servers took their port from services staged in the same chunk.
	if _, ok := s.RealServer(RSKey{Service: "svc4", Addr: netip.MustParseAddr("198.51.100.1"), Port: 80}); !ok {
		t.Fatal("a staged real server did not take its service's port")
	}
	buf.Reset()
	if err := s.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), `{"format":1,`) {
		t.Fatalf("snapshot without staged data starts %.20q: older nodes could not read it", buf.String())
	}
}

func TestFailedCommitChangesNothing(t *testing.T) {
	s := NewState()
	mustApply(t, s, AddService{Service: Service{Name: "svc4", Protocol: TCP, VIP: netip.MustParseAddr("192.0.2.200"), Port: 443}})
	chunks := restoreChunks(0, 9, 3) // chunk 1 adds svc4 again: the commit fails there
	for seq, c := range chunks {
		stage(t, s, "tx", seq, c)
	}
	before := snapshotRoundTrip(t, s)
	cur := s.journalCursor()
	err := s.Execute(CommitStaged{Tx: "tx", Chunks: 3})
	var fe *FieldError
	if !errors.Is(err, ErrExists) || !errors.As(err, &fe) || !strings.Contains(err.Error(), "staged tx chunk 1 command 5") {
		t.Fatalf("commit: %v, want svc4 already exists in chunk 1", err)
	}
	if err := CheckIdentical(s, before); err != nil {
		t.Fatalf("a failed commit changed the state: %v", err)
	}
	if err := CheckInvariants(s); err != nil {
		t.Fatal(err)
	}
	if cs, _ := s.ChangesSince(cur); cs.All || len(cs.Changes) != 0 {
		t.Fatalf("a failed commit journalled %+v", cs)
	}
	mustApply(t, s, AbortStaged{Tx: "tx"})
	if len(s.Staged()) != 0 || s.stagedCommands != 0 {
		t.Fatalf("after abort: %+v", s.Staged())
	}
}

func (s *State) journalCursor() Cursor {
	_, c := s.ChangesSince(Cursor{})
	return c
}

func TestCommitNeedsEveryChunkItNames(t *testing.T) {
	s := NewState()
	chunks := restoreChunks(0, 9, 3)
	stage(t, s, "tx", 0, chunks[0])
	stage(t, s, "tx", 2, chunks[2])
	for _, tt := range []struct {
		commit CommitStaged
		kind   error
		text   string
	}{
		{CommitStaged{Tx: "tx", Chunks: 2}, ErrConflict, "chunk 1 of tx was never staged"},
		{CommitStaged{Tx: "tx", Chunks: 3}, ErrConflict, "tx has 2 chunks staged, the commit names 3"},
		{CommitStaged{Tx: "other", Chunks: 1}, ErrNotFound, "no staged transaction other"},
		{CommitStaged{Tx: "tx", Chunks: 0}, ErrInvalid, "out of range"},
	} {
		if _, err := s.Prepare(tt.commit); !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.text) {
			t.Errorf("%+v: %v, want %v (%s)", tt.commit, err, tt.kind, tt.text)
		}
	}
	if err := s.Execute(StageChunk{Tx: "tx", Seq: 0, At: stageTime, Commands: chunks[1]}); !errors.Is(err, ErrExists) {
		t.Errorf("a chunk staged twice: %v, want ErrExists", err)
	}
}

func TestStageChunkIsNormalizedAgainstEarlierChunks(t *testing.T) {
	s := NewState()
	check := &HealthCheck{Type: CheckTCP, StartDown: true}
	dr := Service{Name: "dr", Protocol: TCP, VIP: vip4, Port: 443, Forwarding: DR, HealthCheck: check}
	stage(t, s, "tx", 0, []Command{AddService{Service: dr}})
	// A real server of the service staged in chunk 0 takes its port and its start_down.
	stage(t, s, "tx", 1, []Command{AddRealServer{RealServer: RealServer{Service: "dr", Addr: rs4, Weight: 1}}})
	// An edit of it keeps the origin and verdict the chunk before gave it.
	stage(t, s, "tx", 2, []Command{EditRealServer{RealServer: RealServer{Service: "dr", Addr: rs4, Weight: 5}}})
	// One for a service nobody stages is refused now, not at the commit.
	_, err := s.Prepare(StageChunk{Tx: "tx", Seq: 3, At: stageTime, Commands: []Command{AddRealServer{RealServer: RealServer{Service: "nope", Addr: rs4, Weight: 1}}}})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("real server of an unknown service: %v, want ErrNotFound", err)
	}
	mustApply(t, s, CommitStaged{Tx: "tx", Chunks: 3})
	rs, ok := s.RealServer(RSKey{Service: "dr", Addr: rs4, Port: 443})
	if !ok || rs.Health != HealthDown || rs.Origin != OriginOperator || rs.Weight != 5 {
		t.Fatalf("real server after the commit: %+v (found %v)", rs, ok)
	}
}

func TestStagingRefusesWhatCannotBeStaged(t *testing.T) {
	s := NewState()
	mustApply(t, s, AddService{Service: webService()})
	key := RSKey{Service: "web", Addr: rs4, Port: 80}
	for name, c := range map[string]Command{
		"health verdict":    StageChunk{Tx: "tx", At: stageTime, Commands: []Command{SetHealth{Key: key, Health: HealthDown}}},
		"nested chunk":      StageChunk{Tx: "tx", At: stageTime, Commands: []Command{StageChunk{Tx: "t2", At: stageTime}}},
		"empty chunk":       StageChunk{Tx: "tx", At: stageTime},
		"no leader time":    StageChunk{Tx: "tx", Commands: []Command{RemoveService{Name: "web"}}},
		"bad id":            StageChunk{Tx: "Not An Id", At: stageTime, Commands: []Command{RemoveService{Name: "web"}}},
		"seq out of range":  StageChunk{Tx: "tx", Seq: MaxStagedChunks, At: stageTime, Commands: []Command{RemoveService{Name: "web"}}},
		"chunk in a batch":  Batch{Commands: []Command{StageChunk{Tx: "tx", At: stageTime, Commands: []Command{RemoveService{Name: "web"}}}}},
		"commit in a batch": Batch{Commands: []Command{RemoveService{Name: "web"}, CommitStaged{Tx: "tx", Chunks: 1}}},
	} {
		if _, err := s.Prepare(c); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Prepare: %v, want ErrInvalid", name, err)
		}
		if name != "no leader time" {
			if err := s.Execute(c); !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: Execute: %v, want ErrInvalid", name, err)
			}
		}
	}
	if len(s.Staged()) != 0 || len(s.Services()) != 1 {
		t.Fatalf("refused commands changed the state: %+v", s.Staged())
	}
}

func TestStagedDataIsBounded(t *testing.T) {
	s := NewState()
	one := []Command{RemoveService{Name: "web"}}
	for i := range MaxStagedTxs {
		stage(t, s, fmt.Sprintf("tx%d", i), 0, one)
	}
	err := s.Execute(StageChunk{Tx: "one-more", At: stageTime, Commands: one})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("transaction %d: %v, want ErrConflict", MaxStagedTxs+1, err)
	}
	big := make([]Command, MaxChunkCommands+1)
	for i := range big {
		big[i] = RemoveService{Name: "web"}
	}
	if err := s.Execute(StageChunk{Tx: "tx0", Seq: 1, At: stageTime, Commands: big}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("chunk of %d: %v, want ErrInvalid", len(big), err)
	}
	// Fill up to the limit on commands over every transaction.
	seq := 1
	for s.stagedCommands+MaxChunkCommands <= MaxStagedCommands {
		if err := s.Execute(StageChunk{Tx: "tx0", Seq: seq, At: stageTime, Commands: big[:MaxChunkCommands]}); err != nil {
			t.Fatal(err)
		}
		seq++
	}
	if err := s.Execute(StageChunk{Tx: "tx1", Seq: 1, At: stageTime, Commands: big[:MaxChunkCommands]}); !errors.Is(err, ErrConflict) {
		t.Fatalf("beyond %d staged commands: %v, want ErrConflict", MaxStagedCommands, err)
	}
}

func TestAbandonedTransactionsExpireByTheLeadersClock(t *testing.T) {
	s := NewState()
	one := []Command{RemoveService{Name: "web"}}
	mustApply(t, s, StageChunk{Tx: "old", At: stageTime, Commands: one})
	mustApply(t, s, StageChunk{Tx: "recent", At: stageTime.Add(StagedTTL), Commands: one})
	if got := s.AbandonedStaged(stageTime.Add(StagedTTL)); len(got) != 0 {
		t.Fatalf("abandoned at exactly the TTL: %+v", got)
	}
	later := stageTime.Add(StagedTTL + time.Second)
	if got := s.AbandonedStaged(later); len(got) != 1 || got[0].Tx != "old" {
		t.Fatalf("abandoned after the TTL: %+v, want old", got)
	}
	// The next chunk, of any transaction, drops it: the same on every node, as the time is
	// in the entry.
	mustApply(t, s, StageChunk{Tx: "recent", Seq: 1, At: later, Commands: one})
	if info := s.Staged(); len(info) != 1 || info[0].ID != "recent" || info[0].Commands != 2 {
		t.Fatalf("after a later chunk: %+v", info)
	}
	// A leader whose clock is behind never expires anything.
	mustApply(t, s, StageChunk{Tx: "x", At: stageTime.Add(-time.Hour), Commands: one})
	if len(s.Staged()) != 2 {
		t.Fatalf("a chunk from the past dropped a transaction: %+v", s.Staged())
	}
}

func TestJournalSaysEverythingWhenItCannotTell(t *testing.T) {
	s := NewState()
	mustApply(t, s, AddService{Service: webService()})
	if cs, _ := s.ChangesSince(Cursor{}); !cs.All {
		t.Fatal("the zero cursor read only some changes")
	}
	cur := s.journalCursor()
	mustApply(t, s, AddRealServer{RealServer: RealServer{Service: "web", Addr: rs4, Weight: 1}})
	cs, cur := s.ChangesSince(cur)
	want := Change{Version: 2, Service: "web", Server: RSKey{Service: "web", Addr: rs4, Port: 80}}
	if cs.All || len(cs.Changes) != 1 || cs.Changes[0] != want || !cs.Changes[0].IsServer() {
		t.Fatalf("one real server added: %+v", cs)
	}
	// A restore from a snapshot is another state: a cursor of the old one reads everything.
	if cs, _ := snapshotRoundTrip(t, s).ChangesSince(cur); !cs.All {
		t.Fatal("a cursor of another state read only some changes")
	}
	// A commit larger than the journal.
	for seq, c := range restoreChunks(0, JournalSize/4+1, 64) {
		stage(t, s, "big", seq, c)
	}
	mustApply(t, s, CommitStaged{Tx: "big", Chunks: len(s.Staged()[0].Chunks)})
	if cs, _ := s.ChangesSince(cur); !cs.All {
		t.Fatalf("%d changes at once read one by one", len(cs.Changes))
	}
	// A consumer that falls behind by more than the journal holds.
	cur = s.journalCursor()
	for i := range JournalSize + 1 {
		mustApply(t, s, SetHealth{Key: RSKey{Service: "web", Addr: rs4, Port: 80}, Health: []Health{HealthDown, HealthUp}[i%2]})
	}
	if cs, _ := s.ChangesSince(cur); !cs.All {
		t.Fatal("a consumer that fell behind the journal read only some changes")
	}
	// One that keeps up reads exactly the last one (the last verdict above was down).
	cur = s.journalCursor()
	mustApply(t, s, SetHealth{Key: RSKey{Service: "web", Addr: rs4, Port: 80}, Health: HealthUp})
	if cs, _ := s.ChangesSince(cur); cs.All || len(cs.Changes) != 1 {
		t.Fatalf("one verdict after a full journal: %+v", cs)
	}
}

func TestSplitForStagingKeepsEachServiceWithItsRealServers(t *testing.T) {
	cmds := flatten(nil, restoreChunks(0, 5, 5)[0]) // 5 services × (1 + 3)
	for _, tt := range []struct {
		max  int
		want string
	}{
		{4, "4 4 4 4 4"},
		{7, "4 4 4 4 4"},
		{8, "8 8 4"},
		{20, "20"},
		{3, "3 1 3 1 3 1 3 1 3 1"}, // a service with more real servers than max is cut
	} {
		var sizes []string
		total := 0
		for _, c := range SplitForStaging(cmds, tt.max) {
			sizes = append(sizes, fmt.Sprint(len(c)))
			total += len(c)
		}
		if got := strings.Join(sizes, " "); got != tt.want || total != len(cmds) {
			t.Errorf("max %d: chunks of %s (%d commands), want %s", tt.max, got, total, tt.want)
		}
	}
}
