//go:build linux

package netlab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Proc is a process the lab started inside a host, in a process group of its own, so
// that a signal reaches it and every child it forked at once (keepalived's VRRP child,
// say).
type Proc struct {
	Host *Host
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start runs name with args inside h (ip netns exec), its output appended to logPath.
// env is added to the lab's own environment.
func (h *Host) Start(logPath string, env []string, name string, args ...string) (*Proc, error) {
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return h.start(exec.Command("ip", append([]string{"netns", "exec", h.NS, name}, args...)...), log, log, env)
}

// StartWithStdout is Start with the process's standard output going to stdout (a pipe the
// caller reads) and only its standard error to logPath.
func (h *Host) StartWithStdout(stdout *os.File, logPath string, name string, args ...string) (*Proc, error) {
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return h.start(exec.Command("ip", append([]string{"netns", "exec", h.NS, name}, args...)...), stdout, log, nil)
}

func (h *Host) start(cmd *exec.Cmd, stdout, log *os.File, env []string) (*Proc, error) {
	cmd.Stdout, cmd.Stderr = stdout, log
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s in %s: %w", cmd.Args[4], h.Name, err)
	}
	p := &Proc{Host: h, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		log.Close()
		close(p.done)
	}()
	h.lab.mu.Lock()
	h.lab.procs = append(h.lab.procs, p)
	h.lab.mu.Unlock()
	return p, nil
}

// Pid is the process's id (ip netns exec execs in place: it is the command's own).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the process's group.
func (p *Proc) Signal(sig syscall.Signal) error {
	if err := syscall.Kill(-p.cmd.Process.Pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %v to %s's process group: %w", sig, p.Host.Name, err)
	}
	return nil
}

// Kill is kill -9 of the whole group; it returns once the process is reaped.
func (p *Proc) Kill() {
	p.Signal(syscall.SIGKILL)
	<-p.done
}

// Wait waits up to d for the process to exit and says whether it did.
func (p *Proc) Wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }
