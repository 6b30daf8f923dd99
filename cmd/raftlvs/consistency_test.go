package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/cluster"
	"github.com/raftlvs/raftlvs/cluster/apiserver"
	"github.com/raftlvs/raftlvs/fsm"
)

// laggingFollower is a follower whose replica gets the leader's state only when a read
// waits for it (or never, with stuck), the way a real follower is a heartbeat behind.
type laggingFollower struct {
	leader     *leaderStore
	leaderAddr string // "" : no leader known
	stuck      bool

	mu    sync.Mutex
	state *fsm.State
}

func (f *laggingFollower) catchUp() {
	f.leader.mu.Lock()
	st := f.leader.state.Clone()
	f.leader.mu.Unlock()
	f.mu.Lock()
	f.state = st
	f.mu.Unlock()
}

func (f *laggingFollower) Apply(_ context.Context, c fsm.Command) error {
	return fmt.Errorf("apply %T: %w", c, cluster.ErrNotLeader)
}
func (f *laggingFollower) DryRun(_ context.Context, c fsm.Command) error {
	return fmt.Errorf("dry run %T: %w", c, cluster.ErrNotLeader)
}
func (f *laggingFollower) ReadIndex(context.Context) error {
	return fmt.Errorf("barrier: %w", cluster.ErrNotLeader)
}
func (f *laggingFollower) View(fn func(*fsm.State))                 { f.mu.Lock(); defer f.mu.Unlock(); fn(f.state) }
func (f *laggingFollower) Join(context.Context, fsm.Director) error { return cluster.ErrNotLeader }
func (f *laggingFollower) Remove(context.Context, string) error     { return cluster.ErrNotLeader }
func (f *laggingFollower) TransferLeadership(context.Context, string) error {
	return cluster.ErrNotLeader
}
func (f *laggingFollower) IsLeader() bool { return false }
func (f *laggingFollower) Serving() bool  { return true }
func (f *laggingFollower) Status() cluster.Status {
	return cluster.Status{NodeID: "d2", State: "Follower", LeaderID: "d1"}
}

func (f *laggingFollower) LeaderAPIAddr() (string, error) {
	if f.leaderAddr == "" {
		return "", cluster.ErrNoLeader
	}
	return f.leaderAddr, nil
}

func (f *laggingFollower) WaitVersion(ctx context.Context, v uint64) error {
	if !f.stuck {
		f.catchUp()
	}
	var have uint64
	f.View(func(s *fsm.State) { have = s.Version() })
	if have >= v {
		return nil
	}
	<-ctx.Done()
	return fmt.Errorf("state version %d, still short of %d: %v", have, v, ctx.Err())
}

// TestSaveThroughAFollowerRightAfterARestoreShowsTheRestore: two CLI runs, as an operator
// types them, the second through a follower that has not applied the first yet.
func TestSaveThroughAFollowerRightAfterARestoreShowsTheRestore(t *testing.T) {
	rules := "-A -t 192.0.2.10:80 -s rr\n-a -t 192.0.2.10:80 -r 198.51.100.21:80 -m -w 1\n"
	leader, leaderURL := testDirector(t)
	follower := &laggingFollower{leader: leader, leaderAddr: strings.TrimPrefix(leaderURL, "http://"), state: fsm.NewState()}
	fsrv := apiserver.New(follower, nil)
	fsrv.ReadWait = 200 * time.Millisecond
	hs := httptest.NewServer(fsrv)
	defer hs.Close()

	if code, _, stderr := raftlvs(t, hs.URL, rules, "restore"); code != exitOK {
		t.Fatalf("restore through the follower: %d %s", code, stderr)
	}
	if code, out, _ := raftlvs(t, hs.URL, "", "--stale", "save"); code != exitOK || out != "" {
		t.Fatalf("save --stale through the lagging follower: exit %d, %q: want its empty replica (what save used to print)", code, out)
	}
	if code, out, stderr := raftlvs(t, hs.URL, "", "save"); code != exitOK || out != rules {
		t.Fatalf("save through the follower right after the restore: exit %d %s\n%s\nwant\n%s", code, stderr, out, rules)
	}

	t.Run("a follower that stays behind never prints an incomplete table", func(t *testing.T) {
		mustRun(t, leaderURL, "service", "add", "-u", "192.0.2.10:53")
		follower.stuck = true
		code, out, stderr := raftlvs(t, hs.URL, "", "--timeout", "1s", "save")
		if code != exitError || out != "" || !strings.Contains(stderr, "behind") {
			t.Errorf("save through a stuck follower: exit %d, stdout %q, stderr %q; want exit 1, nothing printed, and why", code, out, stderr)
		}
	})

	t.Run("without a leader, save refuses and status warns", func(t *testing.T) {
		follower.leaderAddr = ""
		code, out, stderr := raftlvs(t, hs.URL, "", "--timeout", "1s", "save")
		if code != exitError || out != "" || !strings.Contains(stderr, "could not confirm") || !strings.Contains(stderr, "--stale") {
			t.Errorf("save without a leader: exit %d, stdout %q, stderr %q", code, out, stderr)
		}
		code, out, stderr = raftlvs(t, hs.URL, "", "--timeout", "1s", "status", "-o", "json")
		if code != exitOK || !strings.Contains(out, `"node_id": "d2"`) || !strings.Contains(stderr, "may miss the latest writes") {
			t.Errorf("status without a leader: exit %d, stdout %q, stderr %q; want the replica and a warning", code, out, stderr)
		}
	})
}
