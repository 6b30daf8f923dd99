package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/realserver"
)

func TestConfigFileThenFlagsOverride(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.yaml")
	file := "id: web1\naddr: 10.0.1.11\njoin: [10.0.0.1:7946, 10.0.0.2:7946]\nservice: [web@10, api:8080]\npoll: 2s\n"
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := &agentConfig{}
	cmd := agentCmd(cfg, func(context.Context, *agentConfig) error { return nil })
	cmd.SetArgs([]string{"--config", path, "--id", "web9", "--service", "db:5432"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	// The command line wins field by field; the rest comes from the file, then defaults.
	if cfg.ID != "web9" || cfg.Addr != "10.0.1.11" || time.Duration(cfg.Poll) != 2*time.Second || time.Duration(cfg.DrainTimeout) != realserver.DefaultDrainTimeout {
		t.Fatalf("merged config: %+v", cfg)
	}
	if !slices.Equal(cfg.Services, []string{"db:5432"}) || !slices.Equal(cfg.Join, addrList{"10.0.0.1:7946", "10.0.0.2:7946"}) {
		t.Fatalf("lists: services %q join %q", cfg.Services, cfg.Join)
	}
}

func TestConfigFileRejectsUnknownKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "director.yaml")
	if err := os.WriteFile(path, []byte("id: lb1\nvip_iface: eth0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := raftlvs(t, "", "", "director", "--config", path)
	if code != exitUsage || !strings.Contains(stderr, "vip_iface") {
		t.Fatalf("exit %d, stderr %q: want a usage error naming the unknown key", code, stderr)
	}
}

func TestDirectorRefusesConfigsThatCannotWork(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bootstrap and join", []string{"--bootstrap", "--join", "10.0.0.1:7080"}, "--bootstrap: a director that bootstraps joins no one"},
		{"unspecified API address", []string{"--api-addr", "0.0.0.0:7080"}, "--api-advertise"},
		{"bad id", []string{"--id", "-x"}, "--id"},
		{"a VIP-only witness", []string{"--vip-only", "--witness"}, "--vip-only: a witness holds no VIPs"},
		{"a witness with tracked checks", []string{"--witness", "--track", "exec:true"}, "--track: a witness never holds the VIPs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"director", "--gossip-key", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}, tt.args...)
			code, _, stderr := raftlvs(t, "", "", args...)
			if code != exitUsage || !strings.Contains(stderr, tt.want) {
				t.Fatalf("exit %d, stderr %q: want a usage error mentioning %q", code, stderr, tt.want)
			}
		})
	}
}

func TestNotifyHooksFromTheConfigFileAndFlags(t *testing.T) {
	path := filepath.Join(t.TempDir(), "director.yaml")
	if err := os.WriteFile(path, []byte("id: lb1\nnotify: /bin/echo raftlvs\nnotify_health: \"true\"\nnotify_timeout: 3s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := &directorConfig{}
	cmd := directorCmd(cfg, func(context.Context, *directorConfig) error { return nil })
	cmd.SetArgs([]string{"--config", path, "--gossip-key", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "--notify-fault", "/bin/sh /etc/raftlvs/fault.sh"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	opts, err := cfg.options(nil)
	if err != nil {
		t.Fatal(err)
	}
	h := opts.Notify
	if !slices.Equal(h.Any, []string{"/bin/echo", "raftlvs"}) || len(h.Health) != 1 || !strings.HasSuffix(h.Health[0], "/true") ||
		!slices.Equal(h.Fault, []string{"/bin/sh", "/etc/raftlvs/fault.sh"}) || h.Leader != nil || opts.NotifyTimeout != 3*time.Second {
		t.Errorf("hooks %+v, timeout %v", h, opts.NotifyTimeout)
	}
	// A hook named relative to the directory the director starts in is found there,
	// though commands run from /.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hook.sh"), []byte("#!/bin/sh\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	rel := notifyConfig{NotifyLeader: "./hook.sh up"}
	if h, err := rel.hooks(); err != nil || !slices.Equal(h.Leader, []string{filepath.Join(dir, "hook.sh"), "up"}) {
		t.Errorf("a relative hook: %v %v, want its absolute path", h.Leader, err)
	}
	code, _, stderr := raftlvs(t, "", "", "director", "--gossip-key", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "--notify-leader", "/no/such/hook up")
	if code != exitUsage || !strings.Contains(stderr, "--notify-leader") {
		t.Errorf("a hook that is not there: exit %d %q, want a usage error naming the flag", code, stderr)
	}
}
