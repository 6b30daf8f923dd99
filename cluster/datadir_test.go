package cluster

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// openIn opens node id on dir, bootstrapped, on a port of its own.
func openIn(dir, id string) (*Node, error) {
	return Open(Config{NodeID: id, DataDir: dir, RaftBind: "127.0.0.1:0", APIAddr: "127.0.0.1:1", Bootstrap: true,
		Logger: testLogger(), HeartbeatTimeout: time.Second, ElectionTimeout: time.Second, LeaderLeaseTimeout: 500 * time.Millisecond})
}

// refused checks that Open fails on dir for a reason that names file.
func refused(t *testing.T, dir, id, file string) {
	t.Helper()
	n, err := openIn(dir, id)
	if err == nil {
		n.Close()
		t.Fatalf("%s opened a data dir whose %s is not its own to use", id, filepath.Base(file))
	}
	var de *DataDirError
	if !errors.Is(err, ErrDataDir) || !errors.As(err, &de) || de.Path != file || !strings.Contains(err.Error(), file) {
		t.Fatalf("open: %v; want ErrDataDir naming %s", err, file)
	}
	t.Logf("refused: %v", err)
}

func TestADataDirOfAnotherDirectorIsRefused(t *testing.T) {
	dir := t.TempDir()
	n, err := openIn(dir, "d1")
	if err != nil {
		t.Fatal(err)
	}
	n.Close()
	refused(t, dir, "d2", filepath.Join(dir, idFile))
	if n, err = openIn(dir, "d1"); err != nil {
		t.Fatalf("its own director: %v", err)
	}
	n.Close()
}

func TestACorruptRaftLogIsRefused(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "raft.db"), []byte(strings.Repeat("not a bolt file ", 512)), 0o600); err != nil {
		t.Fatal(err)
	}
	refused(t, dir, "d1", filepath.Join(dir, "raft.db"))
}

func TestARaftLogInUseIsRefusedRatherThanWaitedFor(t *testing.T) {
	dir := t.TempDir()
	n, err := openIn(dir, "d1")
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	refused(t, dir, "d1", filepath.Join(dir, "raft.db"))
}

func TestACorruptSnapshotIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name    string
		file    string
		corrupt func([]byte) []byte
	}{
		{"the state's checksum does not match", "state.bin", func(b []byte) []byte { b[len(b)/2] ^= 0xff; return b }},
		{"its metadata cannot be read", "meta.json", func(b []byte) []byte { return b[:len(b)/2] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			n, err := openIn(dir, "d1")
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, "d1 to lead", n.IsLeader)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := n.Apply(ctx, fsm.AddService{Service: fsm.Service{Name: "web", FWMark: 1}}); err != nil {
				t.Fatal(err)
			}
			if err := n.raft.Snapshot().Error(); err != nil {
				t.Fatal(err)
			}
			n.Close()
			snaps, _ := filepath.Glob(filepath.Join(dir, "snapshots", "*", tc.file))
			if len(snaps) != 1 {
				t.Fatalf("snapshots: %v", snaps)
			}
			b, err := os.ReadFile(snaps[0])
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(snaps[0], tc.corrupt(b), 0o600); err != nil {
				t.Fatal(err)
			}
			refused(t, dir, "d1", snaps[0])
		})
	}
}

func TestASnapshotRaftDidNotFinishIsRemovedAtStart(t *testing.T) {
	dir := t.TempDir()
	n, err := openIn(dir, "d1")
	if err != nil {
		t.Fatal(err)
	}
	n.Close()
	tmp := filepath.Join(dir, "snapshots", "2-3-1796132570821.tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "state.bin"), []byte("half a snapshot"), 0o600); err != nil {
		t.Fatal(err)
	}
	if n, err = openIn(dir, "d1"); err != nil {
		t.Fatalf("open with an unfinished snapshot: %v", err)
	}
	n.Close()
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the unfinished snapshot is still there: %v", err)
	}
}
