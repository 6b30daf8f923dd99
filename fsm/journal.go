package fsm

import "sort"

// JournalSize is how many changes a State remembers for its consumers: a consumer that
// falls further behind, or an entry that changes more at once (a restore), is told that
// everything changed.
const JournalSize = 1 << 14

// Change is one thing an applied entry touched: a service (its settings, or whether it
// exists; a removed service's real servers go with it) or one of its real servers.
type Change struct {
	Version uint64 // the state's version once the entry was applied
	Service string
	// Server is the real server changed; zero (Addr not valid) when the service itself did.
	Server RSKey
}

// IsServer reports whether the change is one real server's rather than its service's.
func (c Change) IsServer() bool { return c.Server.Addr.IsValid() }

// ChangeSet is what changed since a Cursor.
type ChangeSet struct {
	// All is set when the journal cannot tell (the cursor is the zero Cursor, belongs to
	// another State, for example the one before a snapshot restore, or is older than the
	// journal reaches): the consumer must treat every service as changed.
	All     bool
	Changes []Change // oldest first; a service or real server may appear more than once
}

// Services returns the names of the services the set touches.
func (cs ChangeSet) Services() map[string]struct{} {
	out := make(map[string]struct{}, len(cs.Changes))
	for _, c := range cs.Changes {
		out[c.Service] = struct{}{}
	}
	return out
}

// Cursor is how far a consumer has read a State's changes. The zero Cursor has read
// nothing.
type Cursor struct {
	j       *journal
	version uint64
}

// ChangesSince returns what the entries applied after cur touched, and the cursor at the
// current version. Reading changes nothing: two consumers keep two cursors.
func (s *State) ChangesSince(cur Cursor) (ChangeSet, Cursor) {
	next := Cursor{j: s.journal, version: s.version}
	j := s.journal
	if cur.j != j || cur.version < j.from || cur.version > s.version {
		return ChangeSet{All: true}, next
	}
	return ChangeSet{Changes: j.since(cur.version)}, next
}

// journal is a ring of the last JournalSize changes, in version order. Every change of a
// version above from is in it.
type journal struct {
	ring []Change
	head int // index of the oldest change once the ring is full
	from uint64
}

func newJournal(version uint64) *journal { return &journal{from: version} }

// record appends the changes of the entry that brought the state to version.
func (j *journal) record(version uint64, changes []Change) {
	if len(changes) > JournalSize {
		j.ring, j.head, j.from = nil, 0, version
		return
	}
	for _, c := range changes {
		c.Version = version
		if len(j.ring) < JournalSize {
			j.ring = append(j.ring, c)
			continue
		}
		// The oldest goes: a consumer that has not read all of its version must start over.
		j.from = max(j.from, j.ring[j.head].Version)
		j.ring[j.head] = c
		j.head = (j.head + 1) % JournalSize
	}
}

// since copies out the changes of versions above v, oldest first.
func (j *journal) since(v uint64) []Change {
	n := len(j.ring)
	at := func(i int) Change { return j.ring[(j.head+i)%n] }
	first := sort.Search(n, func(i int) bool { return at(i).Version > v })
	out := make([]Change, 0, n-first)
	for i := first; i < n; i++ {
		out = append(out, at(i))
	}
	return out
}
