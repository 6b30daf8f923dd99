package cluster

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlvs/raftlvs/fsm"
)

// closedAddr is a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestJoinRefusesTheLeadersOwnAddressAndAnUnreachableVoter(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tc := newTestCluster(t)
	d1 := tc.start("d1", true)
	tc.leader(d1)
	tc.established(d1)

	for _, c := range []struct {
		name     string
		raftAddr string
		want     error
	}{
		{"another id at the leader's own raft address", d1.Self().RaftAddr, fsm.ErrConflict},
		{"a raft address nothing listens on", closedAddr(t), fsm.ErrInvalid},
	} {
		t.Run(c.name, func(t *testing.T) {
			joiner := fsm.Director{ID: "x1", RaftAddr: c.raftAddr, APIAddr: "127.0.0.1:18999"}
			if err := d1.Join(ctx, joiner); !errors.Is(err, c.want) {
				t.Fatalf("join: %v, want %v", err, c.want)
			}
			// Nothing changed: d1 is still the only voter, still leads and still commits.
			if got := voterIDs(t, d1); !slices.Equal(got, []string{"d1"}) {
				t.Fatalf("voters %v after a refused join, want [d1]", got)
			}
			var ok bool
			d1.View(func(s *fsm.State) { _, ok = s.Director("x1") })
			if ok {
				t.Fatal("refused director recorded")
			}
			if err := d1.Barrier(ctx); err != nil {
				t.Fatalf("leader cannot commit after a refused join: %v", err)
			}
		})
	}
}

func TestTransferWithoutTargetNeverPicksAWitness(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tc := newTestCluster(t)
	defer tc.duties.check(t)
	d1 := tc.start("d1", true)
	d2 := tc.start("d2", false)
	w := tc.start("w3", false, func(c *Config) { c.Witness = true })
	if !w.Self().Witness {
		t.Fatal("Config.Witness not in the node's director entry")
	}
	tc.leader(d1)
	tc.established(d1)
	tc.join(ctx, d2)
	tc.join(ctx, w)
	tc.established(tc.leader())
	for _, n := range tc.open() {
		eventually(t, n.ID()+" to know every director", func() bool {
			var ds []fsm.Director
			n.View(func(s *fsm.State) { ds = s.Directors() })
			return len(ds) == 3
		})
	}

	// The candidates, as the leader sees them: every other non-witness voter (once each
	// answered this leader's heartbeats).
	leader := tc.leader()
	var want []string
	for _, id := range []string{"d1", "d2"} {
		if id != leader.ID() {
			want = append(want, id)
		}
	}
	var ids []string
	eventually(t, "the leader's transfer targets", func() bool {
		servers, err := leader.servers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var targets []raft.Server
		leader.View(func(s *fsm.State) { targets = leader.transferTargets(s, servers) })
		ids = ids[:0]
		for _, s := range targets {
			ids = append(ids, string(s.ID))
		}
		return slices.Equal(ids, want)
	})

	// Hand leadership around: it never lands on the witness. (An election a stall
	// provokes may elect it, in a later term than the transfer's; that is not a transfer.)
	for range 4 {
		from := tc.leader()
		before := from.Status().Term
		eventually(t, "a transfer from "+from.ID(), func() bool {
			err := from.TransferLeadership(ctx, "")
			// A leader that took over a moment ago has not heard every voter answer yet.
			if err != nil && !retriable(err) && !errors.Is(err, ErrNoTransferTarget) {
				t.Fatalf("transfer from %s: %v", from.ID(), err)
			}
			return err == nil || !from.IsLeader()
		})
		to := tc.leader()
		if st := to.Status(); to == w && st.Term == before+1 {
			t.Fatalf("leadership transferred from %s to the witness in term %d", from.ID(), st.Term)
		}
		tc.established(to)
	}
}
