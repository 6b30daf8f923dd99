//go:build linux

// Package netlab builds a small L2 segment out of network namespaces for tests and
// benches that run real processes: a bridge in a namespace of its own and hosts attached
// to it by veth (each end named eth0), with named namespaces (ip netns) so that a
// process starts inside one with `ip netns exec`. Everything lives in namespaces the lab
// created; Close kills what it started and deletes them. Nothing touches the root
// namespace.
package netlab

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
)

// ErrUnavailable: this machine cannot host a lab (not root, or no iproute2).
var ErrUnavailable = errors.New("network namespace lab unavailable")

// Available says why a lab cannot be built here, or nil.
func Available() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: needs root", ErrUnavailable)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("%w: no ip command (iproute2)", ErrUnavailable)
	}
	return nil
}

// HostSpec is one host of the segment and its address on eth0.
type HostSpec struct {
	Name string
	Addr netip.Prefix
}

// Lab is the segment.
type Lab struct {
	prefix string
	bridge string // the bridge's namespace

	mu    sync.Mutex
	hosts map[string]*Host
	procs []*Proc
	names []string // namespaces to delete, in creation order
}

// Host is one namespace on the segment.
type Host struct {
	Name string
	NS   string // the ip netns name
	Addr netip.Prefix
	MAC  net.HardwareAddr
	lab  *Lab
}

// New builds the segment. prefix (a few letters) names its namespaces, with a random
// suffix so that labs of concurrent runs never meet.
func New(prefix string, hosts ...HostSpec) (_ *Lab, err error) {
	if err := Available(); err != nil {
		return nil, err
	}
	suffix := make([]byte, 3)
	rand.Read(suffix)
	l := &Lab{prefix: prefix + hex.EncodeToString(suffix), hosts: map[string]*Host{}}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	l.bridge = l.prefix + "-br"
	if err := l.addNamespace(l.bridge); err != nil {
		return nil, err
	}
	if err := run("ip", "-n", l.bridge, "link", "add", "br0", "type", "bridge"); err != nil {
		return nil, err
	}
	// Multicast (VRRP, the IPVS sync daemon) floods to every port; the bridge forwards
	// at once rather than after the STP delays.
	for _, args := range [][]string{
		{"-n", l.bridge, "link", "set", "br0", "type", "bridge", "mcast_snooping", "0", "forward_delay", "0"},
		{"-n", l.bridge, "link", "set", "br0", "up"},
	} {
		if err := run("ip", args...); err != nil {
			return nil, err
		}
	}
	for i, spec := range hosts {
		h := &Host{Name: spec.Name, NS: l.prefix + "-" + spec.Name, Addr: spec.Addr, lab: l}
		if err := l.addNamespace(h.NS); err != nil {
			return nil, err
		}
		port := fmt.Sprintf("p%d", i)
		for _, args := range [][]string{
			{"-n", l.bridge, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", h.NS},
			{"-n", l.bridge, "link", "set", port, "master", "br0", "up"},
			{"-n", h.NS, "addr", "add", spec.Addr.String(), "dev", "eth0"},
			{"-n", h.NS, "link", "set", "eth0", "up"},
			{"-n", h.NS, "link", "set", "lo", "up"},
		} {
			if err := run("ip", args...); err != nil {
				return nil, fmt.Errorf("host %s: %w", h.Name, err)
			}
		}
		if h.MAC, err = h.mac(); err != nil {
			return nil, err
		}
		l.hosts[h.Name] = h
	}
	return l, nil
}

func (l *Lab) addNamespace(name string) error {
	if err := run("ip", "netns", "add", name); err != nil {
		return err
	}
	l.names = append(l.names, name)
	return nil
}

// Host returns the named host.
func (l *Lab) Host(name string) *Host { return l.hosts[name] }

// Close kills every process the lab started (their process groups) and deletes the
// namespaces, and with them every link and address in them.
func (l *Lab) Close() error {
	l.mu.Lock()
	procs := l.procs
	l.procs = nil
	l.mu.Unlock()
	for _, p := range procs {
		p.Kill()
	}
	var errs []error
	for i := len(l.names) - 1; i >= 0; i-- {
		if err := run("ip", "netns", "del", l.names[i]); err != nil {
			errs = append(errs, err)
		}
	}
	l.names = nil
	return errors.Join(errs...)
}

func (h *Host) mac() (net.HardwareAddr, error) {
	out, err := output("ip", "-n", h.NS, "-j", "link", "show", "eth0")
	if err != nil {
		return nil, err
	}
	var links []struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		return nil, fmt.Errorf("read eth0 of %s: %v (%s)", h.Name, err, out)
	}
	return net.ParseMAC(links[0].Address)
}

// LinkDown pulls the host's cable: eth0 goes down (its addresses stay, as on a real
// machine whose carrier is lost).
func (h *Host) LinkDown() error { return run("ip", "-n", h.NS, "link", "set", "eth0", "down") }

// LinkUp plugs it back in.
func (h *Host) LinkUp() error { return run("ip", "-n", h.NS, "link", "set", "eth0", "up") }

// Prefixes lists eth0's IPv4 and IPv6 addresses.
func (h *Host) Prefixes() ([]netip.Prefix, error) {
	out, err := output("ip", "-n", h.NS, "-j", "addr", "show", "dev", "eth0")
	if err != nil {
		return nil, err
	}
	var links []struct {
		Addrs []struct {
			Local     string `json:"local"`
			PrefixLen int    `json:"prefixlen"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal(out, &links); err != nil {
		return nil, fmt.Errorf("addresses of %s: %w", h.Name, err)
	}
	var ps []netip.Prefix
	for _, l := range links {
		for _, a := range l.Addrs {
			if p, err := netip.ParsePrefix(fmt.Sprintf("%s/%d", a.Local, a.PrefixLen)); err == nil {
				ps = append(ps, p)
			}
		}
	}
	return ps, nil
}

// Holds reports whether eth0 carries addr (with any length).
func (h *Host) Holds(addr netip.Addr) (bool, error) {
	ps, err := h.Prefixes()
	for _, p := range ps {
		if p.Addr() == addr {
			return true, nil
		}
	}
	return false, err
}

// DelAddr removes an address from eth0.
func (h *Host) DelAddr(p netip.Prefix) error {
	return run("ip", "-n", h.NS, "addr", "del", p.String(), "dev", "eth0")
}

// Neighbour returns the MAC this host's neighbour table maps addr to on eth0, and the
// entry's state (REACHABLE, STALE, …); no entry is a nil MAC.
func (h *Host) Neighbour(addr netip.Addr) (net.HardwareAddr, string, error) {
	out, err := output("ip", "-n", h.NS, "-j", "neigh", "show", addr.String(), "dev", "eth0")
	if err != nil {
		return nil, "", err
	}
	var entries []struct {
		LLAddr string   `json:"lladdr"`
		State  []string `json:"state"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(out), &entries); err != nil && len(bytes.TrimSpace(out)) > 0 {
		return nil, "", fmt.Errorf("neighbours of %s: %w (%s)", h.Name, err, out)
	}
	for _, e := range entries {
		if e.LLAddr != "" {
			mac, err := net.ParseMAC(e.LLAddr)
			return mac, strings.Join(e.State, ","), err
		}
	}
	return nil, "", nil
}

// HostByMAC names the lab's host with this MAC, or "".
func (l *Lab) HostByMAC(mac net.HardwareAddr) string {
	for _, h := range l.hosts {
		if bytes.Equal(h.MAC, mac) {
			return h.Name
		}
	}
	return ""
}

func run(name string, args ...string) error {
	_, err := output(name, args...)
	return err
}

func output(name string, args ...string) ([]byte, error) {
	var stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
