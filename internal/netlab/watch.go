//go:build linux

package netlab

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// AddrEvent is an address appearing on or leaving a host, when this process heard of it.
type AddrEvent struct {
	Host  string
	Addr  netip.Addr
	Added bool
	At    time.Time
}

// WatchAddr sends to events every change of addr on any of h's links until done is
// closed: rtnetlink's notifications, timed on arrival (well within a millisecond here).
func (h *Host) WatchAddr(addr netip.Addr, events chan<- AddrEvent, done <-chan struct{}) error {
	ns, err := netns.GetFromName(h.NS)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", h.NS, err)
	}
	updates := make(chan netlink.AddrUpdate, 64)
	stop := make(chan struct{})
	if err := netlink.AddrSubscribeWithOptions(updates, stop, netlink.AddrSubscribeOptions{Namespace: &ns}); err != nil {
		ns.Close()
		return fmt.Errorf("watch addresses in %s: %w", h.Name, err)
	}
	go func() {
		defer ns.Close()
		defer close(stop)
		for {
			select {
			case <-done:
				return
			case u, ok := <-updates:
				if !ok {
					return
				}
				a, _ := netip.AddrFromSlice(u.LinkAddress.IP)
				if a.Unmap() == addr {
					events <- AddrEvent{Host: h.Name, Addr: addr, Added: u.NewAddr, At: time.Now()}
				}
			}
		}
	}()
	return nil
}

// Exec runs a command inside h and returns its error, with its output.
func (h *Host) Exec(name string, args ...string) ([]byte, error) {
	return output("ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
}

// ExecInput is Exec with input on the command's standard input (nft -f /dev/stdin).
func (h *Host) ExecInput(input string, name string, args ...string) ([]byte, error) {
	var stderr bytes.Buffer
	cmd := exec.Command("ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
	cmd.Stdin = strings.NewReader(input)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s in %s: %w: %s", name, h.Name, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// ExecEnv is Exec with env added to the lab's own environment.
func (h *Host) ExecEnv(env []string, name string, args ...string) ([]byte, error) {
	var stderr bytes.Buffer
	cmd := exec.Command("ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s in %s: %w: %s", name, h.Name, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
