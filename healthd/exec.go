package healthd

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// ExecPolicy is where a director lets exec checks' commands live (its --exec-check-dir).
// The spec comes from the replicated state, which any operator with write access can
// change: the directory is what keeps "run this" from meaning "run anything".
type ExecPolicy struct {
	// Dir is an absolute directory; "" refuses every exec check.
	Dir string
}

// Resolve returns the file a command names once symbolic links are followed, or an error
// wrapping ErrPolicy if that file is not inside Dir.
func (p ExecPolicy) Resolve(command string) (string, error) {
	if p.Dir == "" {
		return "", fmt.Errorf("exec %s: exec checks are off on this director (no exec-check directory): %w", command, ErrPolicy)
	}
	if !filepath.IsAbs(command) {
		return "", fmt.Errorf("exec %s: not an absolute path: %w", command, ErrPolicy)
	}
	dir, err := filepath.EvalSymlinks(filepath.Clean(p.Dir))
	if err != nil {
		return "", fmt.Errorf("exec %s: exec-check directory %s: %v: %w", command, p.Dir, err, ErrPolicy)
	}
	file, err := filepath.EvalSymlinks(filepath.Clean(command))
	if err != nil {
		return "", fmt.Errorf("exec %s: %w", command, err)
	}
	rel, err := filepath.Rel(dir, file)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("exec %s: %s is outside %s: %w", command, file, p.Dir, ErrPolicy)
	}
	return file, nil
}

// Exec checks' environment: a fixed PATH, not the director's environment (which may hold
// secrets), plus the real server.
const execPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// execWaitDelay bounds how long a check waits for the output of a command's children
// once the command itself has exited or been killed.
const execWaitDelay = 100 * time.Millisecond

// execCheck runs a command in a process group of its own, killed whole at the deadline.
type execCheck struct {
	timeout time.Duration
	policy  ExecPolicy
	command []string
	dynamic bool
}

func newExecCheck(b base, spec *fsm.HealthCheck, policy ExecPolicy) (*execCheck, error) {
	if len(spec.Command) == 0 {
		return nil, fmt.Errorf("compile health check: exec without a command: %w", ErrBadCheck)
	}
	if _, err := policy.Resolve(spec.Command[0]); errors.Is(err, ErrPolicy) {
		return nil, fmt.Errorf("compile health check: %w", err)
	}
	return &execCheck{timeout: b.timeout, policy: policy, command: spec.Command, dynamic: spec.DynamicWeight}, nil
}

func (c *execCheck) check(ctx context.Context, to netip.AddrPort) Result {
	// Resolved again on every run: a link swapped since the check was compiled is not
	// followed out of the directory.
	file, err := c.policy.Resolve(c.command[0])
	if errors.Is(err, ErrPolicy) {
		return down(ErrPolicy, err, "%v", err)
	} else if err != nil {
		return down(ErrExit, err, "%v", err)
	}
	addr, port := to.Addr().String(), strconv.Itoa(int(to.Port()))
	cmd := exec.CommandContext(ctx, file, append(c.command[1:len(c.command):len(c.command)], addr, port)...)
	cmd.Args[0] = c.command[0]
	cmd.Env = []string{execPath, "RAFTLVS_RS_ADDR=" + addr, "RAFTLVS_RS_PORT=" + port}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = execWaitDelay
	var out headWriter
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	st := cmd.ProcessState
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		return down(ErrTimeout, ctx.Err(), "timeout after %v (killed %s and its process group)", c.timeout, c.command[0])
	case ctx.Err() != nil:
		return down(ErrCanceled, ctx.Err(), "canceled (killed %s)", c.command[0])
	case st == nil:
		return down(ErrExit, err, "exec %s: %s", c.command[0], describe(err))
	}
	code := st.ExitCode()
	say := func(format string, args ...any) string {
		s := fmt.Sprintf(format, args...)
		if line := clip(out.String(), 80); line != "" {
			s += ": " + line
		}
		return s
	}
	switch {
	case code == 0:
		return up(say("exit 0"))
	case code < 0:
		sig := "a signal"
		if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			sig = ws.Signal().String()
		}
		return down(ErrExit, err, "%s", say("%s: %s", c.command[0], sig))
	case c.dynamic && code >= 2:
		r := up(say("exit %d (weight %d)", code, code-2))
		r.Weight, r.HasWeight = code-2, true
		return r
	}
	return down(ErrExit, err, "%s", say("exit %d", code))
}

// headWriter keeps the first bytes a command writes, for the reason.
type headWriter struct {
	mu  sync.Mutex
	buf []byte
}

func (w *headWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if room := 256 - len(w.buf); room > 0 {
		w.buf = append(w.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (w *headWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.buf)
}
