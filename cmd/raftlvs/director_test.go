package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/daemon"
)

// directorOptions runs the director command's parsing only and returns the Options it
// would start with.
func directorOptions(t *testing.T, args ...string) (daemon.Options, error) {
	t.Helper()
	cfg := &directorConfig{}
	var opts daemon.Options
	cmd := directorCmd(cfg, func(_ context.Context, c *directorConfig) error {
		var err error
		opts, err = c.options(slog.New(slog.DiscardHandler))
		return err
	})
	cmd.SetArgs(append([]string{"--gossip-key", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}, args...))
	cmd.SetOut(new(strings.Builder))
	cmd.SetErr(new(strings.Builder))
	return opts, cmd.Execute()
}

func TestRaftTimingProfiles(t *testing.T) {
	for _, tc := range []struct {
		args      []string
		hb, lease time.Duration
	}{
		{nil, 300 * time.Millisecond, 150 * time.Millisecond},
		{[]string{"--raft-timing", "fast"}, 100 * time.Millisecond, 50 * time.Millisecond},
		{[]string{"--raft-timing", "relaxed"}, time.Second, 500 * time.Millisecond},
		{[]string{"--raft-timing", "fast", "--heartbeat", "150ms", "--election", "150ms"}, 150 * time.Millisecond, 50 * time.Millisecond},
	} {
		opts, err := directorOptions(t, tc.args...)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if opts.HeartbeatTimeout != tc.hb || opts.LeaderLeaseTimeout != tc.lease || opts.ElectionTimeout < opts.HeartbeatTimeout {
			t.Errorf("%v: %v/%v/%v, want heartbeat %v and lease %v", tc.args, opts.HeartbeatTimeout, opts.ElectionTimeout, opts.LeaderLeaseTimeout, tc.hb, tc.lease)
		}
	}
	if _, err := directorOptions(t, "--raft-timing", "ludicrous"); err == nil || !strings.Contains(err.Error(), "fast") {
		t.Fatalf("an unknown profile: %v, want the profiles listed", err)
	}
}

func TestVIPOnlyAndTrackedChecksFlags(t *testing.T) {
	opts, err := directorOptions(t, "--vip-only", "--track", "exec:pidof haproxy", "--track", "http://127.0.0.1:8404/healthz", "--track-fall", "2")
	if err != nil {
		t.Fatal(err)
	}
	if !opts.VIPOnly || opts.Sync != nil {
		t.Errorf("--vip-only: VIPOnly %v, sync %+v: want no sync daemon", opts.VIPOnly, opts.Sync)
	}
	if opts.Track == nil || len(opts.Track.Checks) != 2 || opts.Track.Fall != 2 || opts.Track.Rise != 1 {
		t.Errorf("--track: %+v", opts.Track)
	}
	// The file's key is track, a list; a check's command line keeps its commas.
	path := filepath.Join(t.TempDir(), "director.yaml")
	if err := os.WriteFile(path, []byte("vip_only: true\ntrack: ['exec:test -e /run/haproxy.pid, or not']\nraft_timing: fast\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err = directorOptions(t, "--config", path)
	if err != nil {
		t.Fatal(err)
	}
	if !opts.VIPOnly || opts.Track == nil || len(opts.Track.Checks) != 1 || opts.Track.Checks[0].Spec != "exec:test -e /run/haproxy.pid, or not" || opts.HeartbeatTimeout != 100*time.Millisecond {
		t.Errorf("from the file: VIPOnly %v, track %+v, heartbeat %v", opts.VIPOnly, opts.Track, opts.HeartbeatTimeout)
	}
	for _, bad := range [][]string{{"--track", "pidof haproxy"}, {"--track", "exec:true", "--track-rise", "0"}} {
		if _, err := directorOptions(t, bad...); err == nil {
			t.Errorf("%v: accepted", bad)
		}
	}
}
