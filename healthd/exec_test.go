package healthd

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

var rs = netip.MustParseAddrPort("192.0.2.7:8080") // exec checks send nothing: any address will do

// script writes an executable shell script into dir.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func execSpec(t *testing.T, to time.Duration, dynamic bool, command ...string) *fsm.HealthCheck {
	return spec(t, fsm.CheckExec, to, func(c *fsm.HealthCheck) { c.Command, c.DynamicWeight = command, dynamic })
}

func TestExecCheckExitCodes(t *testing.T) {
	dir := t.TempDir()
	policy := CheckerConfig{ExecPolicy: ExecPolicy{Dir: dir}}
	exit := func(code int, say string) string {
		return script(t, dir, fmt.Sprintf("exit%d", code), fmt.Sprintf("echo %q\nexit %d", say, code))
	}
	ok, fail, seven := exit(0, "all good"), exit(1, "backend not ready"), exit(7, "busy")
	tests := []struct {
		name       string
		command    string
		dynamic    bool
		up         bool
		reason     string
		weight     int
		withWeight bool
	}{
		{"exit 0 is up", ok, false, true, "exit 0: all good", 0, false},
		{"exit 1 is down, with the command's first line", fail, false, false, "exit 1: backend not ready", 0, false},
		{"another code is down without dynamic weight", seven, false, false, "exit 7: busy", 0, false},
		{"dynamic: exit 0 is up with no weight", ok, true, true, "exit 0", 0, false},
		{"dynamic: exit 1 is down", fail, true, false, "exit 1", 0, false},
		{"dynamic: exit 7 is up with weight 5", seven, true, true, "exit 7 (weight 5)", 5, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, execSpec(t, generous, tt.dynamic, tt.command), policy, rs)
			if tt.up {
				wantUp(t, r, tt.reason)
			} else {
				wantDown(t, r, ErrExit, tt.reason)
			}
			if r.Weight != tt.weight || r.HasWeight != tt.withWeight {
				t.Errorf("weight = %d (%v), want %d (%v)", r.Weight, r.HasWeight, tt.weight, tt.withWeight)
			}
		})
	}
}

func TestExecCheckGetsTheRealServerAsArgumentsAndEnvironment(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(t.TempDir(), "out")
	cmd := script(t, dir, "show", fmt.Sprintf(`printf '%%s\n' "$@" "$RAFTLVS_RS_ADDR" "$RAFTLVS_RS_PORT" "${HOME:-no home}" > %s`, out))
	wantUp(t, run(t, execSpec(t, generous, false, cmd, "--vhost", "www.example"), CheckerConfig{ExecPolicy: ExecPolicy{Dir: dir}}, rs), "exit 0")
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want := "--vhost\nwww.example\n192.0.2.7\n8080\n192.0.2.7\n8080\nno home\n"
	if string(got) != want {
		t.Errorf("the command saw\n%s\nwant its arguments, then address and port, in argv and env, and none of the director's environment:\n%s", got, want)
	}
}

func TestExecCheckKillsTheProcessGroupAtTheTimeout(t *testing.T) {
	t.Parallel() // waits out timeouts
	dir := t.TempDir()
	pidFile := filepath.Join(t.TempDir(), "child")
	cmd := script(t, dir, "hang", fmt.Sprintf("sleep 60 &\necho $! > %s\nwait", pidFile))
	// The child must have been started before the deadline for the test to mean anything:
	// a machine too slow for that within a second gets a longer timeout.
	for _, timeout := range []time.Duration{time.Second, 5 * time.Second} {
		r := run(t, execSpec(t, timeout, false, cmd), CheckerConfig{ExecPolicy: ExecPolicy{Dir: dir}}, rs)
		wantDown(t, r, ErrTimeout, fmt.Sprintf("timeout after %v (killed %s and its process group)", timeout, cmd))
		if _, err := os.Stat(pidFile); err == nil {
			break
		}
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("the script never started its child: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	// SIGKILL went to the group before Check returned; give the kernel time to act on it.
	for i := 0; alive(pid); i++ {
		if i == 1000 {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the command's child %d survived the check's timeout", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// alive reports a process that exists and is not a zombie (the test's container may have
// no init to reap orphans).
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(stat), ") ")
	return !strings.HasPrefix(rest, "Z") && !strings.HasPrefix(rest, "X")
}

func TestExecPolicyRefusesCommandsOutsideItsDirectory(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	marker := filepath.Join(t.TempDir(), "ran")
	evil := script(t, outside, "evil", "touch "+marker)
	inside := script(t, dir, "fine", "exit 0")
	if err := os.Symlink(evil, filepath.Join(dir, "link-out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(inside, filepath.Join(dir, "link-in")); err != nil {
		t.Fatal(err)
	}
	linkedDir := filepath.Join(t.TempDir(), "checks")
	if err := os.Symlink(dir, linkedDir); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		policy  ExecPolicy
		command string
		refused bool
	}{
		{"a command outside the directory", ExecPolicy{Dir: dir}, evil, true},
		{"a link inside pointing outside", ExecPolicy{Dir: dir}, filepath.Join(dir, "link-out"), true},
		{"a path that climbs out with ..", ExecPolicy{Dir: dir}, filepath.Join(dir, "..", filepath.Base(outside), "evil"), true},
		{"the directory itself", ExecPolicy{Dir: dir}, dir, true},
		{"any command when no directory is set", ExecPolicy{}, inside, true},
		{"a command inside the directory runs", ExecPolicy{Dir: dir}, inside, false},
		{"a link inside pointing inside runs", ExecPolicy{Dir: dir}, filepath.Join(dir, "link-in"), false},
		{"a directory named through a link works", ExecPolicy{Dir: linkedDir}, filepath.Join(linkedDir, "fine"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewChecker(execSpec(t, generous, false, tt.command), CheckerConfig{ExecPolicy: tt.policy})
			if !tt.refused {
				if err != nil {
					t.Fatalf("NewChecker: %v", err)
				}
				wantUp(t, c.Check(context.Background(), rs), "exit 0")
				return
			}
			if !errors.Is(err, ErrPolicy) {
				t.Fatalf("NewChecker err = %v, want ErrPolicy", err)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("a refused command ran")
			}
		})
	}
}

func TestExecCheckRefusesALinkSwappedAfterItWasCompiled(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	marker := filepath.Join(t.TempDir(), "ran")
	evil := script(t, outside, "evil", "touch "+marker)
	cmd := script(t, dir, "check", "exit 0")
	c, err := NewChecker(execSpec(t, generous, false, cmd), CheckerConfig{ExecPolicy: ExecPolicy{Dir: dir}})
	if err != nil {
		t.Fatal(err)
	}
	wantUp(t, c.Check(context.Background(), rs), "exit 0")
	if err := os.Remove(cmd); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(evil, cmd); err != nil {
		t.Fatal(err)
	}
	wantDown(t, c.Check(context.Background(), rs), ErrPolicy, "is outside "+dir)
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the swapped-in command ran")
	}
}

func TestExecCheckOfAMissingCommandIsDown(t *testing.T) {
	dir := t.TempDir()
	r := run(t, execSpec(t, generous, false, filepath.Join(dir, "gone")), CheckerConfig{ExecPolicy: ExecPolicy{Dir: dir}}, rs)
	wantDown(t, r, ErrExit, "no such file or directory")
}
