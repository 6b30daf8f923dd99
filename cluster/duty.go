package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// A Duty is one thing a director does while it leads: claim the VIPs, run the master
// sync daemon, register agents, commit health transitions, hand leadership away from a
// witness. The leader loop runs the list given to Lead in order, after Barrier, and on
// losing leadership stops them in the same order, each waited for before the next: the
// VIPs, first in, are first out, so two directors never answer for one.
type Duty struct {
	Name string
	// Run does the duty. It calls started once the duty is in force (the next duty
	// starts only then) and returns once ctx is done, having undone whatever must not
	// outlive the leadership. A Run that returns early is logged and not restarted in
	// this term.
	Run func(ctx context.Context, started func()) error
}

// Lead starts supervising leadership: whenever this node leads, after its Barrier, it
// runs duties in order until it no longer does. Call it once, after Open; until then no
// leader loop runs (raft's leadership notifications wait), so a duty may use the Node.
func (n *Node) Lead(duties ...Duty) {
	n.leadOnce.Do(func() {
		n.duties = duties
		go n.monitorLeadership()
	})
}

// runDuties starts each duty in order, waits until ctx ends, then stops them in the
// same order. Each duty has a context of its own, so that stopping is ordered.
func (n *Node) runDuties(ctx context.Context) {
	type running struct {
		name   string
		cancel context.CancelFunc
		done   chan struct{}
	}
	var active []running
	for _, d := range n.duties {
		if ctx.Err() != nil {
			break
		}
		dctx, cancel := context.WithCancel(context.Background())
		started := make(chan struct{})
		var once sync.Once
		done := make(chan struct{})
		go func() {
			defer close(done)
			err := d.Run(dctx, func() { once.Do(func() { close(started) }) })
			if dctx.Err() == nil {
				n.log.Error("leader duty ended while this node leads; it runs again next term", "duty", d.Name, "err", err)
			}
		}()
		active = append(active, running{name: d.Name, cancel: cancel, done: done})
		select {
		case <-started:
			n.log.Debug("leader duty started", "duty", d.Name)
		case <-done:
		case <-ctx.Done():
		}
	}
	<-ctx.Done()
	for _, r := range active {
		r.cancel()
		<-r.done
		n.log.Debug("leader duty stopped", "duty", r.name)
	}
}

// witnessPause is how long a witness leads before it hands leadership away (long
// enough for an election it won to settle, short enough that the VIPs move soon), and
// how often it looks again while no director can take over.
const witnessPause = time.Second

// WitnessDuty hands leadership away from a witness, which holds no VIPs and programs no
// IPVS, to a director that can take it (HasTransferTarget). Without one — no full
// director in the cluster, or none reachable — it keeps leading and says so once a
// term: handing leadership to another witness would only start the same round again,
// a new term every second for ever. The transfer runs beside the leader loop:
// TransferLeadership stops the loop before it transfers, so the duty itself must not
// wait for it; a failed transfer restarts the loop, which tries again after the pause.
func (n *Node) WitnessDuty() Duty {
	return Duty{Name: "witness handover", Run: func(ctx context.Context, started func()) error {
		started()
		warned := false
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(witnessPause):
			}
			ok, err := n.HasTransferTarget(ctx)
			if err != nil || !ok {
				if !warned {
					n.log.Error("no full director to hand leadership to: this witness leads, and no director holds the VIPs; start or join a director without --witness",
						"err", err)
					warned = true
				}
				continue
			}
			n.log.Info("witness is leader: handing leadership over")
			go func() {
				if err := n.TransferLeadership(context.Background(), ""); err != nil && !errors.Is(err, ErrNotLeader) {
					n.log.Warn("witness cannot hand leadership over yet", "err", err)
				}
			}()
			<-ctx.Done()
			return nil
		}
	}}
}

// Joiner asks an existing director to add this one as a voter (the API client does).
type Joiner interface {
	Join(ctx context.Context, d fsm.Director) error
}

// Join pacing while no director accepts this one.
const (
	joinRetryMin = 500 * time.Millisecond
	joinRetryMax = 10 * time.Second
)

// JoinThrough asks j to add this node until it is a voter that knows a leader, or ctx
// ends. It is idempotent: a node that is a voter already (a restart) returns at once.
func (n *Node) JoinThrough(ctx context.Context, j Joiner) error {
	for wait := joinRetryMin; ; wait = min(2*wait, joinRetryMax) {
		if n.isVoterWithLeader() {
			return nil
		}
		err := j.Join(ctx, n.self)
		if err == nil {
			n.log.Info("joined the cluster")
			return nil
		}
		n.log.Warn("join the cluster", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return fmt.Errorf("join the cluster: %w (last attempt: %w)", ctx.Err(), err)
		case <-time.After(wait):
		}
	}
}

func (n *Node) isVoterWithLeader() bool {
	st := n.Status()
	if st.LeaderID == "" {
		return false
	}
	for _, v := range st.Voters {
		if v.ID == n.cfg.NodeID && v.Suffrage == "Voter" {
			return true
		}
	}
	return false
}

// stopTransferTimeout bounds the leadership handover of a planned stop.
const stopTransferTimeout = 5 * time.Second

// Stop is a planned stop: a leader hands leadership over first, so clients see a
// transfer (milliseconds) rather than an election after a timeout, and its duties (the
// VIPs first) have ended before the next leader's start; then the node closes.
func (n *Node) Stop() error {
	if n.IsLeader() {
		ctx, cancel := context.WithTimeout(context.Background(), stopTransferTimeout)
		if err := n.TransferLeadership(ctx, ""); err != nil {
			n.log.Warn("transfer leadership before stopping (the others elect a leader once this one is gone)", "err", err)
		}
		cancel()
	}
	return n.Close()
}
