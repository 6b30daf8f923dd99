package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bolt "go.etcd.io/bbolt"

	"github.com/raftlvs/raftlvs/fsm"
)

// ErrDataDir classifies a data dir a director refuses to start on: another director's,
// or a file in it that is corrupt or not raftlvs's. Starting anyway would join the
// cluster under a wrong identity, or with a history that is not this node's.
var ErrDataDir = errors.New("unusable data dir")

// DataDirError names the file and what is wrong with it. It wraps ErrDataDir.
type DataDirError struct {
	Path   string
	Reason string
	Err    error
}

func (e *DataDirError) Error() string {
	s := fmt.Sprintf("%v: %s: %s", ErrDataDir, e.Path, e.Reason)
	if e.Err != nil {
		s += fmt.Sprintf(" (%v)", e.Err)
	}
	return s
}

func (e *DataDirError) Unwrap() []error { return []error{ErrDataDir, e.Err} }

// idFile names the director a data dir belongs to, written on its first start.
const idFile = "director-id"

// startAfresh is what to do about a corrupt file: the log, the votes and the snapshots
// belong together, so none is moved away alone (a node that forgot its vote could vote
// twice in one term).
const startAfresh = "move the whole data dir away, remove this director from the cluster (raftlvs leave ID) and join it again"

// boltLockTimeout bounds the wait for raft.db's lock: bolt would wait for ever while
// another process holds it.
const boltLockTimeout = 2 * time.Second

// checkIdentity refuses a data dir that belongs to another director. A data dir
// without the file (a new one, or one from before the file existed) is this
// director's from now on.
func checkIdentity(dir, id string) error {
	path := filepath.Join(dir, idFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if owner := strings.TrimSpace(string(b)); owner != id {
			return &DataDirError{Path: path, Reason: fmt.Sprintf(
				"this data dir belongs to director %q, not %q: give each director a data dir of its own, or start this one as --id %s", owner, id, owner)}
		}
		return nil
	case errors.Is(err, os.ErrNotExist):
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(id+"\n"), 0o600); err != nil {
			return &DataDirError{Path: path, Reason: "cannot record which director this data dir belongs to", Err: err}
		}
		if err := os.Rename(tmp, path); err != nil {
			return &DataDirError{Path: path, Reason: "cannot record which director this data dir belongs to", Err: err}
		}
		return nil
	}
	return &DataDirError{Path: path, Reason: "cannot read which director this data dir belongs to", Err: err}
}

// openLogStore opens raft.db, refusing one that another process holds or that bolt
// cannot read. bolt panics on some corrupt pages; that, too, is a refusal here.
func openLogStore(dir string) (store *raftboltdb.BoltStore, err error) {
	path := filepath.Join(dir, "raft.db")
	defer func() {
		if r := recover(); r != nil {
			store, err = nil, &DataDirError{Path: path, Reason: "corrupt (bolt could not read it): " + startAfresh, Err: fmt.Errorf("%v", r)}
		}
	}()
	store, err = raftboltdb.New(raftboltdb.Options{Path: path, BoltOptions: &bolt.Options{Timeout: boltLockTimeout}})
	switch {
	case err == nil:
		return store, nil
	case errors.Is(err, bolt.ErrTimeout):
		return nil, &DataDirError{Path: path, Reason: "locked by another process: is another director running on this data dir?", Err: err}
	case errors.Is(err, bolt.ErrInvalid), errors.Is(err, bolt.ErrVersionMismatch), errors.Is(err, bolt.ErrChecksum):
		return nil, &DataDirError{Path: path, Reason: "not a Raft log this director can read (corrupt, or another program's file): " + startAfresh, Err: err}
	}
	return nil, &DataDirError{Path: path, Reason: "cannot open the Raft log", Err: err}
}

// checkSnapshots refuses snapshots raft would skip or fail on: a directory whose
// metadata raft cannot read (it would leave it out silently), a state file whose
// checksum does not match, or a state this director cannot decode. It removes the ones
// raft did not finish writing.
func checkSnapshots(dir string, snaps *raft.FileSnapshotStore, log *slog.Logger) error {
	listed, err := snaps.List()
	if err != nil {
		return &DataDirError{Path: filepath.Join(dir, "snapshots"), Reason: "cannot list the snapshots", Err: err}
	}
	entries, err := os.ReadDir(filepath.Join(dir, "snapshots"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return &DataDirError{Path: filepath.Join(dir, "snapshots"), Reason: "cannot list the snapshots", Err: err}
	}
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() {
			continue
		}
		if strings.HasSuffix(name, ".tmp") {
			// A snapshot raft did not finish writing (killed, or its disk full): raft never
			// reads it, nor removes it, and on a small disk it takes the room a new one needs.
			tmp := filepath.Join(dir, "snapshots", name)
			if err := os.RemoveAll(tmp); err != nil {
				return &DataDirError{Path: tmp, Reason: "cannot remove an unfinished snapshot", Err: err}
			}
			log.Warn("removed a snapshot raft did not finish writing", "path", tmp)
			continue
		}
		if !slices.ContainsFunc(listed, func(m *raft.SnapshotMeta) bool { return m.ID == name }) {
			return &DataDirError{Path: filepath.Join(dir, "snapshots", name, "meta.json"), Reason: "corrupt snapshot metadata: " + startAfresh}
		}
	}
	for _, m := range listed {
		path := filepath.Join(dir, "snapshots", m.ID, "state.bin")
		_, rc, err := snaps.Open(m.ID) // checks the state file's CRC
		if err != nil {
			return &DataDirError{Path: path, Reason: "corrupt snapshot: " + startAfresh, Err: err}
		}
		_, err = fsm.ReadSnapshot(rc)
		rc.Close()
		if err != nil {
			return &DataDirError{Path: path, Reason: "a snapshot this director cannot read (corrupt, or written by newer code): " + startAfresh, Err: err}
		}
	}
	if len(listed) > 0 {
		log.Debug("snapshots checked", "count", len(listed))
	}
	return nil
}
