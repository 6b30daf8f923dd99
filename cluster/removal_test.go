package cluster

import (
	"io"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// seedConfiguration leaves in dir a Raft log whose only configuration holds servers
// other than the node that will open it: what a joiner holds while it replays the log
// from before it joined.
func seedConfiguration(t *testing.T, dir string, servers ...raft.ServerID) {
	t.Helper()
	store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	snaps, err := raft.NewFileSnapshotStore(dir, 1, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var conf raft.Configuration
	for _, id := range servers {
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: id, Address: raft.ServerAddress(closedAddr(t))})
	}
	_, trans := raft.NewInmemTransport("")
	rc := raft.DefaultConfig()
	rc.LocalID = servers[0]
	if err := raft.BootstrapCluster(rc, store, store, snaps, trans, conf); err != nil {
		t.Fatal(err)
	}
}

func TestAJoinerThatLosesItsLeaderBeforeItHoldsItselfStaysUp(t *testing.T) {
	dir := t.TempDir()
	seedConfiguration(t, dir, "d1", "d2")
	tc := newTestCluster(t)
	joiner := tc.start("d3", false, func(c *Config) { c.DataDir = dir })

	// The leader it was catching up from is gone before the entry that adds it came:
	// raft says "no leader" while the latest configuration still lacks this node.
	joiner.onObservation(raft.Observation{Data: raft.LeaderObservation{}})
	if s := joiner.raft.State(); s == raft.Shutdown {
		t.Fatal("a joiner that never held itself in a configuration shut down as if removed")
	}

	// Once a committed configuration held it, a later one without it is a removal.
	joiner.sm.StoreConfiguration(2, raft.Configuration{Servers: []raft.Server{{ID: "d3"}}})
	if !joiner.removedFromCluster() {
		t.Fatal("a member whose latest configuration leaves it out does not count as removed")
	}
}
