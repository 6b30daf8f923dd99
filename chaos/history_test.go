package chaos

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/fsm"
)

func TestAnErrorTellsAWritesOutcome(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want Outcome
	}{
		{"acknowledged", nil, OK},
		{"504 outcome unknown", &api.Error{StatusCode: http.StatusGatewayTimeout, Code: api.CodeOutcomeUnknown}, Unknown},
		{"no answer (the client's own unknown)", fmt.Errorf("PUT x: %w: %w", api.ErrOutcomeUnknown, context.DeadlineExceeded), Unknown},
		{"503 nothing logged", &api.Error{StatusCode: http.StatusServiceUnavailable, Code: api.CodeUnavailable}, Failed},
		{"507 the leader's disk is full", &api.Error{StatusCode: http.StatusInsufficientStorage, Code: api.CodeDiskFull}, Failed},
		{"no director reachable", fmt.Errorf("%w: dial", api.ErrUnreachable), Failed},
		{"refused as invalid", &api.Error{StatusCode: http.StatusBadRequest, Code: api.CodeInvalid}, Failed},
		{"500: anything may have happened", &api.Error{StatusCode: http.StatusInternalServerError, Code: api.CodeInternal}, Unknown},
		{"an error of no known kind", errors.New("connection reset"), Unknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := classify(true, tc.err); got != tc.want {
				t.Fatalf("classify(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
	if got := classify(false, &api.Error{StatusCode: http.StatusGatewayTimeout}); got != Failed {
		t.Fatalf("a read that failed: %v, want %v (it observed nothing)", got, Failed)
	}
}

func TestTheRegisterModelFindsAStaleReadAndAcceptsAnUnknownWrite(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	ok := []Op{
		{Client: 0, Kind: Write, Key: 0, Value: 1, Call: ms(0), Return: ms(10), Outcome: OK},
		{Client: 1, Kind: Write, Key: 0, Value: 2, Call: ms(20), Return: ms(30), Outcome: Unknown},
		{Client: 2, Kind: Write, Key: 0, Value: 3, Call: ms(20), Return: ms(30), Outcome: Failed},
		{Client: 0, Kind: Read, Values: []int{1}, Call: ms(40), Return: ms(50), Outcome: OK},
		// The unknown write took effect later.
		{Client: 0, Kind: Read, Values: []int{2}, Call: ms(60), Return: ms(70), Outcome: OK},
	}
	if l := checkLinearizable(ok, time.Minute, t.TempDir()); l.Result != porcupine.Ok {
		t.Fatalf("a linearizable history: %v", l.Result)
	}
	stale := append(ok, Op{Client: 1, Kind: Read, Values: []int{1}, Call: ms(80), Return: ms(90), Outcome: OK})
	if l := checkLinearizable(stale, time.Minute, t.TempDir()); l.Result != porcupine.Illegal || l.Rendered == "" {
		t.Fatalf("a read of an overwritten value: %v (%q)", l.Result, l.Rendered)
	}
	failed := append(ok[:4:4], Op{Client: 1, Kind: Read, Values: []int{3}, Call: ms(80), Return: ms(90), Outcome: OK})
	if l := checkLinearizable(failed, time.Minute, t.TempDir()); l.Result != porcupine.Illegal {
		t.Fatalf("a read of a write that failed (nothing logged): %v", l.Result)
	}
}

func TestTheLedgerFindsLostAndPhantomAdds(t *testing.T) {
	h := []Op{
		{Kind: Add, Entry: 1, Outcome: OK}, {Kind: Add, Entry: 2, Outcome: OK},
		{Kind: Add, Entry: 3, Outcome: Failed}, {Kind: Add, Entry: 4, Outcome: Unknown},
	}
	dump := func(entries ...int) *api.StateDump {
		d := &api.StateDump{}
		for _, e := range entries {
			d.RealServers = append(d.RealServers, fsm.RealServer{Service: ledgerService, Addr: ledgerAddr(e)})
		}
		return d
	}
	lc := checkLedger(h, map[string]*api.StateDump{"d1": dump(1, 2, 4), "d2": dump(1, 3)})
	if lc.Acked != 2 || lc.LostCount() != 1 || len(lc.Lost["d2"]) != 1 || lc.Lost["d2"][0] != 2 || len(lc.Phantoms["d2"]) != 1 || len(lc.Lost["d1"]) != 0 {
		t.Fatalf("ledger check %+v", lc)
	}
}

func TestDoubleOwnershipIsTheStretchesWhereTwoAnswered(t *testing.T) {
	p := arpPeriod
	var rs []Round
	answers := []uint16{1, 1, 3, 3, 3, 1, 1, 0, 0, 2, 6, 2, 2, 0}
	for i, a := range answers {
		rs = append(rs, Round{At: time.Duration(i) * p, Answers: a})
	}
	d := DoubleOwners(rs)
	if len(d) != 2 || d[0].From != 2*p || d[0].Len() != 3*p || d[1].From != 10*p || d[1].Len() != p {
		t.Fatalf("double owners %+v", d)
	}
	s := Silences(rs)
	if len(s) != 2 || s[0].Len() != 2*p {
		t.Fatalf("silences %+v", s)
	}
}
