//go:build linux

package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/internal/netlab"
)

// raftlvsRun is three VIP-only directors with one timing profile.
type raftlvsRun struct {
	b       *bench
	bin     string
	profile string
	key     string
	procs   map[string]*netlab.Proc
	logf    func(string, ...any)
}

func apiAddr(d string) string { return netip.AddrPortFrom(directorAddr(d), 7080).String() }

func (r *raftlvsRun) args(d string, bootstrap bool) []string {
	addr := directorAddr(d).String()
	args := []string{"director", "--id", d, "--data-dir", filepath.Join(r.b.dir, "raftlvs-"+r.profile, d),
		"--raft-addr", addr + ":7000", "--api-addr", addr + ":7080", "--gossip-addr", addr + ":7946",
		"--vip-interface", "eth0", "--vip-only", "--raft-timing", r.profile, "--log-level", "info",
		// Plain Raft and HTTP: the bench measures failover, and keepalived's VRRP has no
		// authentication either. (TLS costs a handshake per new connection, not per
		// heartbeat: cluster/DESIGN.md has its benchmark.)
		"--insecure"}
	if bootstrap {
		return append(args, "--bootstrap")
	}
	var others []string
	for _, o := range directors {
		if o != d {
			others = append(others, apiAddr(o))
		}
	}
	return append(args, "--join", strings.Join(others, ","))
}

func (r *raftlvsRun) start(d string, bootstrap bool) error {
	p, err := r.b.lab.Host(d).Start(filepath.Join(r.b.dir, "raftlvs-"+r.profile+"-"+d+".log"),
		[]string{"RAFTLVS_GOSSIP_KEY=" + r.key}, r.bin, r.args(d, bootstrap)...)
	if err != nil {
		return err
	}
	r.procs[d] = p
	return nil
}

// client talks to the directors' APIs from the client's namespace.
func (r *raftlvsRun) client(addrs ...string) *api.Client {
	c := api.NewClient(addrs...)
	c.HTTP = r.b.client.HTTPClient()
	c.Timeout = 10 * time.Second
	return c
}

// status is what one director says of the cluster, or nil if it does not answer.
func (r *raftlvsRun) status(d string) *api.StatusResponse {
	c := r.client(apiAddr(d))
	c.Timeout = time.Second
	st, err := c.Status(context.Background(), false)
	if err != nil {
		return nil
	}
	return st
}

// leader is the director every live director names as leader, once they agree.
func (r *raftlvsRun) leader() string {
	leader := ""
	for _, d := range directors {
		st := r.status(d)
		if st == nil || st.Node.LeaderID == "" || len(st.Node.Voters) != len(directors) {
			return ""
		}
		if leader != "" && st.Node.LeaderID != leader {
			return ""
		}
		leader = st.Node.LeaderID
	}
	return leader
}

func (r *raftlvsRun) setUp() error {
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i * 7)
	}
	r.key = base64.StdEncoding.EncodeToString(key)
	r.procs = map[string]*netlab.Proc{}
	if err := r.start("d1", true); err != nil {
		return err
	}
	if err := waitFor("d1 to lead", 20*time.Second, func() bool { st := r.status("d1"); return st != nil && st.Node.State == "Leader" }); err != nil {
		return err
	}
	for _, d := range directors[1:] {
		if err := r.start(d, false); err != nil {
			return err
		}
	}
	if err := waitFor("three voters that agree on a leader", 60*time.Second, func() bool { return r.leader() != "" }); err != nil {
		return err
	}
	if _, err := r.client(apiAddr("d1")).AddVIP(context.Background(), api.VIPRequest{Addr: vipPrefix.String(), Name: "bench"}); err != nil {
		return fmt.Errorf("declare the VIP: %w", err)
	}
	return r.settle()
}

// steadyLeader waits (a noisy host's stall may have cost an election) until the
// directors agree on a leader, it alone holds the VIP and the client reaches it.
func (r *raftlvsRun) steadyLeader() (string, error) {
	var leader string
	var holders []string
	err := waitFor("a steady leader holding the VIP", 30*time.Second, func() bool {
		leader, holders = r.leader(), r.b.holders()
		return leader != "" && len(holders) == 1 && holders[0] == leader && r.b.probe.healthy(50)
	})
	if err != nil {
		return "", fmt.Errorf("%w: leader %q, VIP on %v", err, leader, holders)
	}
	return leader, nil
}

// settle waits for the cluster (three voters, one leader) and the VIP on the leader.
func (r *raftlvsRun) settle() error {
	if err := waitFor("three voters that agree on a leader", 60*time.Second, func() bool { return r.leader() != "" }); err != nil {
		return err
	}
	if err := r.b.steady(r.logf); err != nil {
		return err
	}
	// The last restart's GARP burst and raft's catch-up are over before the next trial.
	time.Sleep(time.Second)
	return nil
}

func (r *raftlvsRun) tearDown() {
	for _, p := range r.procs {
		p.Kill()
	}
	// The VIP may be left on a director killed mid-claim: take it off for the next system.
	for _, d := range directors {
		if ok, _ := r.b.lab.Host(d).Holds(vipAddr); ok {
			r.b.lab.Host(d).DelAddr(vipPrefix)
		}
	}
}

// trial runs one event against the current leader and returns the client's gap.
func (r *raftlvsRun) trial(event string) (time.Duration, error) {
	leader, err := r.steadyLeader()
	if err != nil {
		return 0, err
	}
	h := r.b.lab.Host(leader)
	randomPhase()
	t0 := time.Now()
	switch event {
	case "crash":
		if err = h.LinkDown(); err == nil {
			r.procs[leader].Kill()
		}
	case "transfer":
		err = r.client(apiAddr(leader)).TransferLeadership(context.Background(), "")
	case "SIGTERM":
		err = r.procs[leader].Signal(syscall.SIGTERM)
	case "leave":
		err = r.client(apiAddr(leader)).Leave(context.Background(), leader)
	default:
		err = fmt.Errorf("unknown event %q", event)
	}
	if err != nil {
		return 0, fmt.Errorf("%s of %s: %w", event, leader, err)
	}
	g, err := r.b.measure(t0)
	if err != nil {
		return 0, err
	}
	return g, r.restore(event, leader)
}

// restore brings the director an event took away back as a follower.
func (r *raftlvsRun) restore(event, d string) error {
	switch event {
	case "crash":
		if err := r.b.lab.Host(d).LinkUp(); err != nil {
			return err
		}
		if err := r.start(d, d == "d1"); err != nil {
			return err
		}
	case "SIGTERM":
		if !r.procs[d].Wait(15 * time.Second) {
			return errors.New("the director did not stop within 15 s of SIGTERM")
		}
		if err := r.start(d, d == "d1"); err != nil {
			return err
		}
	case "leave":
		// A director that left stops by itself; it joins again with an empty data dir.
		if !r.procs[d].Wait(15 * time.Second) {
			r.procs[d].Kill()
		}
		if err := os.RemoveAll(filepath.Join(r.b.dir, "raftlvs-"+r.profile, d)); err != nil {
			return err
		}
		if err := r.start(d, false); err != nil {
			return err
		}
	}
	return r.settle()
}
