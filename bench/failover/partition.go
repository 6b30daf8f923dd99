//go:build linux

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/raftlvs/raftlvs/internal/netlab"
)

// partitionTrial cuts the leader off from the other directors' Raft traffic only (the
// client still reaches it) and times, from the directors' own address notifications,
// when the old leader released the VIP (having lost its quorum: released is counted from
// the cut) and when the new one claimed it. margin is
// claim − release: positive, the VIP was on no director for that long; negative, on two.
// This is the measurement behind "should a new leader wait a lease before claiming"
// (director/vip/DESIGN.md).
// raftCut drops Raft's TCP port in and out of one director's namespace.
const raftCut = `table inet raftcut {
	chain in { type filter hook input priority 0; tcp dport 7000 drop; tcp sport 7000 drop; }
	chain out { type filter hook output priority 0; tcp dport 7000 drop; tcp sport 7000 drop; }
}
`

func (r *raftlvsRun) partitionTrial() (g, released, margin time.Duration, err error) {
	leader, err := r.steadyLeader()
	if err != nil {
		return 0, 0, 0, err
	}
	events := make(chan netlab.AddrEvent, 16)
	done := make(chan struct{})
	defer close(done)
	for _, d := range directors {
		if err := r.b.lab.Host(d).WatchAddr(vipAddr, events, done); err != nil {
			return 0, 0, 0, err
		}
	}
	h := r.b.lab.Host(leader)
	rules := filepath.Join(r.b.dir, "raftcut.nft")
	if err := os.WriteFile(rules, []byte(raftCut), 0o644); err != nil {
		return 0, 0, 0, err
	}
	randomPhase()
	t0 := time.Now()
	if out, err := h.Exec("nft", "-f", rules); err != nil {
		return 0, 0, 0, fmt.Errorf("cut raft off %s: %w %s", leader, err, out)
	}
	g, err = r.b.measure(t0)
	if err != nil {
		return 0, 0, 0, err
	}
	var releasedAt, claimed time.Time
	for len(events) > 0 {
		e := <-events
		switch {
		case e.Host == leader && !e.Added && releasedAt.IsZero():
			releasedAt = e.At
		case e.Host != leader && e.Added && claimed.IsZero():
			claimed = e.At
		}
	}
	if out, err := h.Exec("nft", "delete", "table", "inet", "raftcut"); err != nil {
		return 0, 0, 0, fmt.Errorf("heal the partition of %s: %w %s", leader, err, out)
	}
	if releasedAt.IsZero() || claimed.IsZero() {
		return 0, 0, 0, fmt.Errorf("no release (%v) or no claim (%v) seen", releasedAt, claimed)
	}
	r.logf("partition of %s: released after %v, claimed after %v", leader, releasedAt.Sub(t0), claimed.Sub(t0))
	return g, releasedAt.Sub(t0), claimed.Sub(releasedAt), r.settle()
}
