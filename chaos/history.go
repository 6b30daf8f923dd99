package chaos

import (
	"errors"
	"net/netip"
	"time"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/fsm"
)

// What the clients do: each operation is on the replicated state through the API.
//
//   - a register per key: the weight of one real server of the fwmark service "reg",
//     written (PUT, a value no other write uses) and read (GET of the service, every
//     key at once, a consistent read: the client asks the leader's version first);
//   - a ledger: real servers added to the fwmark service "ledger", each once, never
//     removed, so every acknowledged add must be on every director at the end.
const (
	regService    = "reg"
	ledgerService = "ledger"
)

// regAddr is the real server that holds register key k.
func regAddr(k int) netip.Addr { return netip.AddrFrom4([4]byte{10, 98, 0, byte(k + 1)}) }

// ledgerAddr is the real server of ledger entry n (n < 2^20).
func ledgerAddr(n int) netip.Addr {
	v := 10<<24 | 96<<16 + uint32(n) + 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// Kind is what an operation does.
type Kind uint8

const (
	Write Kind = iota // set a register
	Read              // read every register
	Add               // add a ledger entry
)

func (k Kind) String() string { return [...]string{"write", "read", "add"}[k] }

// Outcome is what the client learnt of an operation.
type Outcome uint8

const (
	OK      Outcome = iota // acknowledged (a read: answered)
	Failed                 // did not happen: refused, or never reached a leader
	Unknown                // may or may not have happened (api.ErrOutcomeUnknown, a timeout)
)

func (o Outcome) String() string { return [...]string{"ok", "fail", "unknown"}[o] }

// Op is one operation, from its invocation to what came back.
type Op struct {
	Client int
	Kind   Kind
	Key    int   // Write: the register
	Value  int   // Write: the weight written
	Values []int // Read: every register's weight, -1 for one missing
	Entry  int   // Add: the ledger entry
	Via    string
	Call   time.Duration // since the run's start
	Return time.Duration
	Outcome
	// Exists: an Add answered "exists". Each entry is added once, so only a retry of a
	// write that a director said was not logged (503) can meet its own entry.
	Exists bool
	Err    string
}

// classify is what an error tells of a write: only an answer that says nothing was
// logged (503, no director reachable) or the cluster's refusal is a failure; anything
// else — 504, a timeout, a 500 — may have been applied.
func classify(write bool, err error) Outcome {
	switch {
	case err == nil:
		return OK
	case !write:
		return Failed // a read that did not answer observed nothing
	case errors.Is(err, api.ErrOutcomeUnknown):
		return Unknown
	case errors.Is(err, api.ErrUnavailable), errors.Is(err, api.ErrUnreachable),
		errors.Is(err, fsm.ErrInvalid), errors.Is(err, fsm.ErrNotFound), errors.Is(err, fsm.ErrConflict):
		return Failed
	}
	return Unknown
}

// Tally counts a history's operations by kind and outcome.
type Tally struct {
	Ops                          int
	Writes, Reads, Adds          [3]int // by Outcome
	Acknowledged                 int    // writes and adds acknowledged
	ExistsAnswers                int
	FirstUnknown, LastUnknownErr string
}

func tally(h []Op) Tally {
	var t Tally
	for _, op := range h {
		t.Ops++
		switch op.Kind {
		case Write:
			t.Writes[op.Outcome]++
		case Read:
			t.Reads[op.Outcome]++
		case Add:
			t.Adds[op.Outcome]++
		}
		if op.Kind != Read && op.Outcome == OK {
			t.Acknowledged++
		}
		if op.Exists {
			t.ExistsAnswers++
		}
		if op.Outcome == Unknown {
			if t.FirstUnknown == "" {
				t.FirstUnknown = op.Err
			}
			t.LastUnknownErr = op.Err
		}
	}
	return t
}
