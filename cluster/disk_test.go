package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlvs/raftlvs/fsm"
)

// smallDisk mounts a tmpfs of size bytes at a new temporary dir: a disk of its own to
// fill (root only).
func smallDisk(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("raftlvs-test", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, fmt.Sprintf("size=%d", size)); err != nil {
		t.Skipf("mount a tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// fill writes into dir until its disk is full; the returned func frees it.
func fill(t *testing.T, dir string) func() {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, chunk := range []int{1 << 20, 4 << 10, 512} {
		buf := make([]byte, chunk)
		for {
			if _, err := f.Write(buf); errors.Is(err, syscall.ENOSPC) {
				break
			} else if err != nil {
				t.Fatal(err)
			}
		}
	}
	return func() { os.Remove(path) }
}

func TestALeaderWithAFullDiskRefusesWritesClearlyAndNothingAcknowledgedIsLost(t *testing.T) {
	disk := smallDisk(t, 8<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tc := newTestCluster(t)
	d1 := tc.start("d1", true, func(c *Config) { c.DataDir = disk })
	tc.leader(d1)
	tc.established(d1)
	for _, id := range []string{"d2", "d3"} {
		tc.join(ctx, tc.start(id, false))
	}
	acked := 0
	write := func(n *Node) error {
		err := n.Apply(ctx, fsm.AddService{Service: fsm.Service{Name: fmt.Sprintf("s%d", acked), FWMark: uint32(acked + 1)}})
		if err == nil {
			acked++
		}
		return err
	}
	for range 10 {
		if err := write(tc.leader()); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "d1 to lead", func() bool {
		if l := tc.leader(); l != d1 {
			l.TransferLeadership(ctx, "d1")
		}
		return d1.IsLeader()
	})
	tc.established(d1)

	free := fill(t, disk)
	// bolt reuses the free pages of its file first: the writes that fit are stored, and
	// acknowledged; the first that needs the file to grow is refused.
	var err error
	for i := 0; i < 5000 && err == nil; i++ {
		err = write(d1)
	}
	var full *DiskFullError
	if !errors.Is(err, ErrDiskFull) || !errors.As(err, &full) || full.Dir != disk || !strings.Contains(err.Error(), disk) {
		t.Fatalf("a write on a leader whose disk is full: %v; want ErrDiskFull naming %s", err, disk)
	}
	t.Logf("refused: %v", err)
	// Nothing was logged, and the leader stepped down: the others take the writes.
	for range 5 {
		var err error
		eventually(t, "a write while d1's disk is full", func() bool {
			l := tc.anyLeader()
			err = write(l)
			return err == nil || !retriable(err) && !errors.Is(err, ErrDiskFull)
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	free()
	for _, n := range tc.open() {
		eventually(t, n.ID()+" to hold every acknowledged write", func() bool {
			var count int
			n.View(func(s *fsm.State) { count = len(s.Services()) })
			return count == acked
		})
	}
}

// A follower whose disk fills answers the leader's appends with false. raft's pipelined
// replication could then stop sending to it for good (its sender parked on a pipeline
// nobody read: hashicorp/raft#612), and the leader could never shut down. Without
// pipelining, the follower catches up once it has room, and the leader stops.
func TestAFollowerWhoseDiskFilledCatchesUpAndTheLeaderStillStops(t *testing.T) {
	disk := smallDisk(t, 8<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tc := newTestCluster(t)
	tc.ourDefaults = true // heartbeats every 30 ms: the replication paths at full speed
	d1 := tc.start("d1", true)
	tc.leader(d1)
	tc.established(d1)
	tc.join(ctx, tc.start("d2", false))
	d3 := tc.start("d3", false, func(c *Config) { c.DataDir = disk })
	tc.join(ctx, d3)

	free := fill(t, disk)
	acked := 0
	for i := 0; i < 2000 && d3.store.full() == nil; i++ {
		if tc.anyLeader().Apply(ctx, fsm.AddService{Service: fsm.Service{Name: fmt.Sprintf("s%d", i), FWMark: uint32(i + 1)}}) == nil {
			acked++
		}
	}
	if d3.store.full() == nil {
		t.Fatal("2000 writes and d3's disk never refused one")
	}
	// More appends, which d3 refuses while the others commit them, from writers at once:
	// raft's sender is then always ready to send again (the race behind #612).
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 50 {
				err := tc.anyLeader().Apply(ctx, fsm.AddService{Service: fsm.Service{Name: fmt.Sprintf("w%d-%d", w, i), FWMark: uint32(10000 + w*100 + i)}})
				if err == nil {
					mu.Lock()
					acked++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	free()
	leader := tc.anyLeader()
	eventually(t, "d3 to catch up", func() bool {
		var count int
		d3.View(func(s *fsm.State) { count = len(s.Services()) })
		return count >= acked
	})
	if leader == d3 {
		return
	}
	stopped := make(chan error, 1)
	go func() { stopped <- leader.Stop() }()
	select {
	case <-stopped:
		tc.mu.Lock()
		delete(tc.nodes, leader.ID())
		tc.mu.Unlock()
	case <-time.After(30 * time.Second):
		t.Fatalf("%s still stopping after 30 s", leader.ID())
	}
}

func TestReplicationIsNeverPipelined(t *testing.T) {
	n, err := openIn(t.TempDir(), "d1")
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if _, err := n.trans.AppendEntriesPipeline("d2", "127.0.0.1:1"); !errors.Is(err, raft.ErrPipelineReplicationNotSupported) {
		t.Fatalf("AppendEntriesPipeline: %v, want raft.ErrPipelineReplicationNotSupported", err)
	}
}
