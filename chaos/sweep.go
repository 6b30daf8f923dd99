//go:build linux

package chaos

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
)

// Everything a run makes is named after the harness's pid, so that a later run can tell
// what an earlier one left behind (killed by a test timeout, say) from what a run still
// going on this shared machine is using.
const namePrefix = "rlch"

// labPrefix is the netlab prefix of this process's namespaces: rlch<pid>x, then netlab's
// random suffix.
func labPrefix() string { return fmt.Sprintf("%s%dx", namePrefix, os.Getpid()) }

// mountSource names this process's tmpfs mounts in /proc/self/mounts.
func mountSource() string { return fmt.Sprintf("%s-%d", namePrefix, os.Getpid()) }

var (
	leftNamespace = regexp.MustCompile(`^` + namePrefix + `(\d+)x[0-9a-f]+-`)
	leftMount     = regexp.MustCompile(`^` + namePrefix + `-(\d+)$`)
)

// alive reports whether the process pid still exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Sweep removes what runs whose harness process is gone left behind: the processes in
// their namespaces, the namespaces, and their tmpfs mounts. It returns what it removed.
func Sweep() ([]string, error) {
	var removed []string
	var errs []error
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		m := leftNamespace.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		if pid, _ := strconv.Atoi(m[1]); alive(pid) {
			continue
		}
		if pids, err := exec.Command("ip", "netns", "pids", name).Output(); err == nil {
			for _, f := range strings.Fields(string(pids)) {
				if pid, err := strconv.Atoi(f); err == nil {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		if b, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("delete namespace %s: %w: %s", name, err, b))
			continue
		}
		removed = append(removed, "namespace "+name)
	}
	mounts, err := leftMounts()
	if err != nil {
		errs = append(errs, err)
	}
	for _, m := range mounts {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
			continue
		}
		removed = append(removed, "mount "+m)
	}
	return removed, errors.Join(errs...)
}

// leftMounts lists the mount points of tmpfs mounts of harness processes that are gone.
func leftMounts() ([]string, error) {
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		m := leftMount.FindStringSubmatch(fields[0])
		if m == nil {
			continue
		}
		if pid, _ := strconv.Atoi(m[1]); !alive(pid) {
			out = append(out, fields[1])
		}
	}
	return out, sc.Err()
}
