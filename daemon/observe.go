package daemon

import (
	"context"
	"fmt"
	"net/http"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/cluster"
	"github.com/raftlvs/raftlvs/cluster/apiserver"
	"github.com/raftlvs/raftlvs/director/ipvs"
	"github.com/raftlvs/raftlvs/director/registrar"
	"github.com/raftlvs/raftlvs/director/vip"
	"github.com/raftlvs/raftlvs/events"
	"github.com/raftlvs/raftlvs/metrics"
	"github.com/raftlvs/raftlvs/statuspage"
)

// What a director tells of itself besides the API: its timeline (GET /v1/events, fed by
// the hooks below and by a watcher of the replicated state), /metrics, and the status
// page at /. All of it hangs off the API's one mux.

// observability is the director's timeline, its metrics registry and the counters that
// outlive a leader term.
type observability struct {
	events    *events.Log
	state     *events.StateWatcher
	registrar *registrar.Counters // the registrar's, kept across terms
	metrics   *metrics.Director
}

func newObservability(id string) *observability {
	log := events.NewLog(id, 0)
	return &observability{events: log, state: events.NewStateWatcher(log), registrar: &registrar.Counters{}}
}

// clusterEvent records a leader change or a voter's reachability, as the node saw it.
func (o *observability) clusterEvent(e cluster.Event) {
	ev := api.Event{At: e.At}
	switch e.Kind {
	case cluster.EventLeader:
		ev.Kind, ev.Subject, ev.To = api.EventLeader, e.Leader, e.Leader
		ev.Message = fmt.Sprintf("%s is the leader (term %d)", e.Leader, e.Term)
		if e.Leader == "" {
			ev.Subject, ev.To, ev.Message = "", "none", "no leader known: an election or a transfer is under way, or this director is cut off"
		}
	case cluster.EventPeerUnreachable:
		ev.Kind, ev.Subject, ev.To = api.EventPeer, e.Peer, api.ContactUnreachable
		ev.Message = e.Peer + " does not answer the leader's heartbeats"
	case cluster.EventPeerReachable:
		ev.Kind, ev.Subject, ev.To = api.EventPeer, e.Peer, api.ContactReachable
		ev.Message = e.Peer + " answers the leader's heartbeats again"
	default:
		return
	}
	o.events.Record(ev)
}

// vipEvent records a VIP put on or taken off this director's interface.
func (o *observability) vipEvent(e vip.Event) {
	msg := map[vip.EventKind]string{
		vip.EventClaimed:  "claimed %s on %s (gratuitous ARP / NA sent)",
		vip.EventReadded:  "put %s back on %s: someone had removed it",
		vip.EventAdopted:  "took over %s, found on %s already",
		vip.EventReleased: "released %s from %s",
		vip.EventStale:    "removed %s from %s: a VIP this follower must not hold",
	}[e.Kind]
	held := e.Kind == vip.EventClaimed || e.Kind == vip.EventReadded || e.Kind == vip.EventAdopted
	to := "released"
	if held {
		to = "held"
	}
	o.events.Record(api.Event{At: e.At, Kind: api.EventVIP, Subject: e.VIP.String(), To: to,
		Message: fmt.Sprintf(msg, e.VIP, e.Interface)})
}

// repairEvent records a drift of the IPVS table that the reconciler repaired.
func (o *observability) repairEvent(r ipvs.Repair) {
	msg := fmt.Sprintf("%s (%s) was edited in the kernel by hand: put back", r.Name, r.Service)
	if r.Recreated {
		msg = fmt.Sprintf("%s (%s) was deleted from the kernel by hand: recreated", r.Name, r.Service)
	}
	o.events.Record(api.Event{At: r.At, Kind: api.EventDrift, Subject: r.Name, Message: msg})
}

// watchState records the committed health and drain changes once the node has caught
// up (a replayed log is not news).
func (o *observability) watchState(ctx context.Context, node *cluster.Node) {
	select {
	case <-node.Ready():
	case <-ctx.Done():
		return
	}
	o.state.Run(ctx, node)
}

// mount hangs the timeline, the metrics and the status page on the API server, and
// returns the handler to serve: the API instrumented for its own metrics.
func (d *Director) mount(srv *apiserver.Server) http.Handler {
	o := d.obs
	src := metrics.DirectorSources{
		Raft: d.node, State: d.node, Agents: func() []api.Agent { return agentsOf(d.pool) },
		Registrar: o.registrar, Transitions: o.state,
	}
	if d.plane != nil {
		src.DataPlane = d.plane
	}
	if d.health != nil {
		src.Checks = d.health.sched
	}
	o.metrics = metrics.NewDirector(src)
	srv.Handle("GET /v1/events", o.events.Handler())
	srv.Handle("GET /metrics", metrics.Handler(o.metrics))
	statuspage.Mount(srv)
	return metrics.InstrumentAPI(o.metrics.Registry(), srv)
}
