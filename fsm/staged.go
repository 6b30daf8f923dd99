package fsm

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// A change too large for one log entry (a restore of 110,000 rules) is staged: its
// commands go to the log in chunks, each a normal-sized entry kept aside in the state,
// unapplied; one small entry then applies them all, in order, all or nothing, validated
// against the state at that point. Staged data is part of snapshots. A transaction that
// is neither committed nor aborted is dropped StagedTTL after its last chunk, by the clock
// of the leader that prepared the chunks (the fsm has none).

const (
	TypeStageChunk   CommandType = 14
	TypeCommitStaged CommandType = 15
	TypeAbortStaged  CommandType = 16
)

// Bounds on staged data: every director holds it in memory until the commit.
const (
	MaxChunkCommands  = 20_000  // in one chunk, nested batches counted by their commands
	MaxStagedChunks   = 1024    // in one transaction
	MaxStagedTxs      = 8       // open at once
	MaxStagedCommands = 1 << 20 // over every open transaction: a 50,000 × 10 restore is 550,000
	// StagedTTL is how long a transaction lives after its last chunk. The next chunk
	// staged (to any transaction) drops those older than that, and AbandonedStaged lists
	// them for the leader to abort.
	StagedTTL = 15 * time.Minute
)

// StageChunk puts chunk Seq (0, 1, …) of transaction Tx aside, unapplied. Chunks may be
// staged in any order, so a client can send them several at a time; each is normalized
// against the state and the chunks of Tx staged before it, so a client keeps each service
// and its real servers in one chunk (SplitForStaging cuts so). Only the operator's commands
// can be staged: services and real servers added, edited or removed.
type StageChunk struct {
	Tx  string `json:"tx"`
	Seq int    `json:"seq"`
	// At is the leader's clock when it prepared the chunk (cluster.Node.Apply sets it):
	// the only time the fsm knows, so that expiry is the same on every node.
	At       time.Time `json:"at,omitzero"`
	Commands []Command `json:"-"`
}

// CommitStaged applies chunks 0..Chunks-1 of Tx in order, all or nothing, and forgets the
// transaction. Naming the count catches a chunk that never made it. A commit that fails
// changes nothing: the transaction stays staged until aborted or expired.
type CommitStaged struct {
	Tx     string `json:"tx"`
	Chunks int    `json:"chunks"`
}

// AbortStaged forgets a staged transaction.
type AbortStaged struct {
	Tx string `json:"tx"`
}

func (StageChunk) Type() CommandType   { return TypeStageChunk }
func (CommitStaged) Type() CommandType { return TypeCommitStaged }
func (AbortStaged) Type() CommandType  { return TypeAbortStaged }

// stagedTx is a transaction's chunks. Like services it is never changed in place: a new
// chunk makes a new stagedTx.
type stagedTx struct {
	chunks      map[int][]Command
	commands    int
	first, last time.Time // At of the first chunk, the latest At
}

func putStaged(s *State, id string, tx *stagedTx) {
	if old := s.staged[id]; old != nil {
		s.stagedCommands -= old.commands
	}
	if tx == nil {
		delete(s.staged, id)
		return
	}
	s.staged[id] = tx
	s.stagedCommands += tx.commands
}

// expired reports whether tx is abandoned as seen by a chunk prepared at at.
func (tx *stagedTx) expired(at time.Time) bool {
	return !at.IsZero() && !tx.last.IsZero() && at.Sub(tx.last) > StagedTTL
}

// StagedTx describes an open staged transaction.
type StagedTx struct {
	ID          string
	Chunks      []int // the sequence numbers staged, in order
	Commands    int
	First, Last time.Time
}

// Staged lists the open staged transactions by id.
func (s *State) Staged() []StagedTx {
	out := make([]StagedTx, 0, len(s.staged))
	for _, id := range slices.Sorted(maps.Keys(s.staged)) {
		tx := s.staged[id]
		out = append(out, StagedTx{ID: id, Chunks: slices.Sorted(maps.Keys(tx.chunks)), Commands: tx.commands, First: tx.first, Last: tx.last})
	}
	return out
}

// AbandonedStaged returns an abort for every transaction nothing was staged to for
// StagedTTL before now: the leader commits them to free what they hold when no new chunk
// comes to drop them.
func (s *State) AbandonedStaged(now time.Time) []AbortStaged {
	var out []AbortStaged
	for _, tx := range s.Staged() {
		if s.staged[tx.ID].expired(now) {
			out = append(out, AbortStaged{Tx: tx.ID})
		}
	}
	return out
}

// IsOperatorCommand reports whether c is one of the operator's commands on the table:
// a service or real server added, edited or removed. Only these can be staged, or sent
// in an operator's batch.
func IsOperatorCommand(c Command) bool {
	switch c.(type) {
	case AddService, EditService, RemoveService, AddRealServer, EditRealServer, RemoveRealServer:
		return true
	}
	return false
}

// stageable counts the commands of cmds, nested batches by their commands, and refuses
// what cannot be staged.
func stageable(cmds []Command) (int, error) {
	n := 0
	for i, c := range cmds {
		if b, ok := c.(Batch); ok {
			m, err := stageable(b.Commands)
			if err != nil {
				return 0, fmt.Errorf("command %d: %w", i+1, err)
			}
			n += m
			continue
		}
		if !IsOperatorCommand(c) {
			return 0, fmt.Errorf("command %d: %w", i+1, invalid("commands", "%T cannot be staged: only services and real servers can", c))
		}
		n++
	}
	return n, nil
}

// liveStaged counts the transactions and commands still staged once a chunk prepared at
// at has dropped the expired ones.
func (s *State) liveStaged(at time.Time) (txs, commands int) {
	for _, tx := range s.staged {
		if !tx.expired(at) {
			txs++
			commands += tx.commands
		}
	}
	return txs, commands
}

func (c StageChunk) check(s *State) error {
	if err := validateName("tx", c.Tx); err != nil {
		return err
	}
	if c.Seq < 0 || c.Seq >= MaxStagedChunks {
		return invalid("seq", "%d is out of range 0..%d", c.Seq, MaxStagedChunks-1)
	}
	n, err := stageable(c.Commands)
	switch {
	case err != nil:
		return err
	case n == 0:
		return invalid("commands", "at least one command is required")
	case n > MaxChunkCommands:
		return invalid("commands", "%d commands exceed the limit of %d a chunk", n, MaxChunkCommands)
	}
	tx := s.staged[c.Tx]
	if tx != nil && tx.expired(c.At) {
		tx = nil // dropped first
	}
	if _, dup := tx.chunk(c.Seq); dup {
		return exists("seq", "chunk %d of %s is staged already", c.Seq, c.Tx)
	}
	txs, staged := s.liveStaged(c.At)
	if tx == nil && txs >= MaxStagedTxs {
		return conflict("tx", "%d staged transactions are open already: commit or abort one", txs)
	}
	if staged+n > MaxStagedCommands {
		return conflict("commands", "%d more commands would stage %d, above the limit of %d", n, staged+n, MaxStagedCommands)
	}
	return nil
}

func (tx *stagedTx) chunk(seq int) ([]Command, bool) {
	if tx == nil {
		return nil, false
	}
	cmds, ok := tx.chunks[seq]
	return cmds, ok
}

func (c StageChunk) mutate(s *State) {
	for _, id := range slices.Sorted(maps.Keys(s.staged)) {
		if s.staged[id].expired(c.At) {
			s.setStaged(id, nil)
		}
	}
	n, _ := stageable(c.Commands)
	tx := &stagedTx{chunks: map[int][]Command{}, first: c.At, last: c.At}
	if old := s.staged[c.Tx]; old != nil {
		tx.chunks = maps.Clone(old.chunks)
		tx.commands, tx.first = old.commands, old.first
		if old.last.After(c.At) {
			tx.last = old.last
		}
	}
	tx.chunks[c.Seq] = slices.Clone(c.Commands)
	tx.commands += n
	s.setStaged(c.Tx, tx)
}

// complete returns the transaction a commit names, checking that it holds exactly chunks
// 0..Chunks-1.
func (c CommitStaged) complete(s *State) (*stagedTx, error) {
	tx := s.staged[c.Tx]
	switch {
	case tx == nil:
		return nil, notFound("tx", "no staged transaction %s", c.Tx)
	case c.Chunks < 1 || c.Chunks > MaxStagedChunks:
		return nil, invalid("chunks", "%d is out of range 1..%d", c.Chunks, MaxStagedChunks)
	case len(tx.chunks) != c.Chunks:
		return nil, conflict("chunks", "%s has %d chunks staged, the commit names %d", c.Tx, len(tx.chunks), c.Chunks)
	}
	for seq := range c.Chunks {
		if _, ok := tx.chunks[seq]; !ok {
			return nil, conflict("chunks", "chunk %d of %s was never staged", seq, c.Tx)
		}
	}
	return tx, nil
}

func (c CommitStaged) check(s *State) error { return s.try(c) }

// mutate applies a commit that check accepted (Execute runs it in one pass instead).
func (c CommitStaged) mutate(s *State) { _ = c.run(s) }

func (c CommitStaged) run(s *State) error {
	tx, err := c.complete(s)
	if err != nil {
		return err
	}
	for seq := range c.Chunks {
		for i, sub := range tx.chunks[seq] {
			if err := s.run(sub); err != nil {
				return fmt.Errorf("staged %s chunk %d command %d: %w", c.Tx, seq, i+1, err)
			}
		}
	}
	s.setStaged(c.Tx, nil)
	return nil
}

func (c AbortStaged) check(s *State) error {
	if s.staged[c.Tx] == nil {
		return notFound("tx", "no staged transaction %s", c.Tx)
	}
	return nil
}

func (c AbortStaged) mutate(s *State) { s.setStaged(c.Tx, nil) }
