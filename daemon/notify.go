package daemon

import (
	"cmp"
	"context"
	"sync/atomic"
	"time"

	"github.com/raftlvs/raftlvs/cluster"
	"github.com/raftlvs/raftlvs/daemon/notify"
	"github.com/raftlvs/raftlvs/fsm"
)

// notifier runs the operator's notify hooks (Options.Notify) for this director:
//
//   - role changes: leader when its leader duties run (a duty, last in, so the VIPs are
//     held by then; it is stopped last, after they are dropped), follower when it is in
//     touch with another leader, fault when it has had neither for two election
//     timeouts (no quorum, or cut off; a starting director, before its first role,
//     only after startupGrace). A watcher polls the node every 200 ms and is poked by
//     the duty, so the leader event does not wait for a tick;
//   - health transitions: every director (not only the leader) runs the health hook
//     when its replica applies a real server's change to up or down, as keepalived runs
//     notify_up/notify_down on every director; RAFTLVS_ROLE says whether this one leads,
//     for a command that should act once.
//
// Role and health events have a queue and a runner each, so that a burst of health
// events never holds back a leader event. Nothing here can block the leader loop or the
// state machine: the duty sets a flag, the watchers read the state and queue events,
// the runners drop what does not fit.
type notifier struct {
	id         string
	node       *cluster.Node
	hooks      notify.Hooks
	roles      *notify.Notifier
	health     *notify.Notifier
	faultAfter time.Duration

	leading atomic.Bool
	role    atomic.Value // notify.Kind: the last role reported
	poke    chan struct{}
}

// rolePoll paces the role watcher: a fault or follower is noticed within this.
const rolePoll = 200 * time.Millisecond

// startupGrace is how long a starting director (joining, catching up) may go without a
// leader before it reports a fault: a joiner's token, certificate and catch-up take
// seconds, and a fault at every start would be noise.
const startupGrace = 30 * time.Second

func newNotifier(opts Options, node *cluster.Node) *notifier {
	if opts.Notify.Empty() {
		return nil
	}
	o := notify.Options{Timeout: opts.NotifyTimeout, Logger: opts.Logger.With("part", "notify")}
	n := &notifier{
		id: opts.ID, node: node, hooks: opts.Notify,
		roles: notify.New(opts.Notify, o), health: notify.New(opts.Notify, o),
		faultAfter: 2 * cmp.Or(opts.ElectionTimeout, cluster.DefaultElectionTimeout),
		poke:       make(chan struct{}, 1),
	}
	n.role.Store(notify.Kind(""))
	return n
}

// duty marks this director's leadership in force for the role watcher.
func (n *notifier) duty() cluster.Duty {
	return cluster.Duty{Name: "notify hooks", Run: func(ctx context.Context, started func()) error {
		n.leading.Store(true)
		n.kick()
		started()
		<-ctx.Done()
		n.leading.Store(false)
		n.kick()
		return nil
	}}
}

func (n *notifier) kick() {
	select {
	case n.poke <- struct{}{}:
	default:
	}
}

// run runs the hooks and their watchers until ctx ends.
func (n *notifier) run(ctx context.Context) {
	go n.roles.Run(ctx)
	go n.health.Run(ctx)
	n.watchRoles(ctx)
}

func (n *notifier) watchRoles(ctx context.Context) {
	tracker := notify.NewRoleTracker(n.id, n.faultAfter, startupGrace, time.Now())
	tick := time.NewTicker(rolePoll)
	defer tick.Stop()
	for {
		leader, _ := n.node.Leader()
		o := notify.Observation{
			At:      time.Now(),
			Leading: n.leading.Load(),
			// Leading is the duty's to say: a leader whose duties have not started yet
			// (or have stopped) is not a follower.
			Serving: n.node.Serving() && !n.node.IsLeader(),
			Leader:  leader,
		}
		if e, ok := tracker.Observe(o); ok {
			n.role.Store(e.Kind)
			n.roles.Notify(e)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-n.poke:
		}
	}
}

// healthChanged queues the health event of a committed transition, which the state's
// watcher (events.StateWatcher, once the replica is ready) reports. It never blocks.
func (n *notifier) healthChanged(rs *fsm.RealServer, from fsm.Health, at time.Time) {
	e, ok := notify.HealthEvent(rs, from, at)
	if !ok {
		return
	}
	leader, _ := n.node.Leader()
	e.Director, e.Leader, e.Role = n.id, leader, n.role.Load().(notify.Kind)
	n.health.Notify(e)
}
