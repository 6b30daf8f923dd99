package metrics

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/cluster"
	"github.com/raftlvs/raftlvs/director"
	"github.com/raftlvs/raftlvs/director/ipvs"
	"github.com/raftlvs/raftlvs/director/registrar"
	"github.com/raftlvs/raftlvs/director/syncd"
	"github.com/raftlvs/raftlvs/director/vip"
	"github.com/raftlvs/raftlvs/events"
	"github.com/raftlvs/raftlvs/fsm"
	"github.com/raftlvs/raftlvs/healthd"
)

// Raft is the Raft node as the collector reads it (*cluster.Node).
type Raft interface {
	RaftStats() cluster.RaftStats
}

// State is the local replica (*cluster.Node).
type State interface {
	View(func(*fsm.State))
}

// DataPlane is the director's kernel side (*director.Director).
type DataPlane interface {
	// Status with counters reads the IPVS counters of every programmed service.
	Status(counters bool) director.Status
	ReconcilerStats() ipvs.Stats
	VIPStats() []vip.VIPStats
	VIPInterface() string
}

// Checks is the health-check scheduler (*healthd.Scheduler).
type Checks interface {
	Status() healthd.Status
}

// DirectorSources are what a director's metrics come from. Raft and State are
// required; the others are left out where the director has none (a witness has no data
// plane, a director may run no health checks).
type DirectorSources struct {
	Raft      Raft
	State     State
	DataPlane DataPlane
	Agents    func() []api.Agent // the agents in the gossip pool
	Registrar interface {
		Values() registrar.CounterValues
	}
	Transitions interface {
		Counts() events.Transitions
	}
	Checks Checks
	Now    func() time.Time // time.Now by default
}

// Director is what a director's /metrics serves: a registry for the cluster's, the VIPs',
// the reconciler's, the checks' and the API's figures, and the IPVS table and the real
// servers' state built beside it (table.go).
type Director struct {
	reg *prometheus.Registry
	src DirectorSources
}

// NewDirector returns the metrics of a director.
func NewDirector(src DirectorSources) *Director {
	if src.Now == nil {
		src.Now = time.Now
	}
	reg := newRegistry("director")
	reg.MustRegister(&directorCollector{src: src})
	return &Director{reg: reg, src: src}
}

// Registry is where more of the director's collectors go (InstrumentAPI's).
func (d *Director) Registry() *prometheus.Registry { return d.reg }

// Gather implements prometheus.Gatherer: the registry's families and the table's, by
// name.
func (d *Director) Gather() ([]*dto.MetricFamily, error) {
	var rows []realServerRow
	d.src.State.View(func(st *fsm.State) { rows = realServerRows(st) })
	table := []*dto.MetricFamily{stateFamily(rows)}
	if d.src.DataPlane != nil {
		table = append(table, ipvsFamilies(d.src.DataPlane.Status(true).Services)...)
	}
	fams, err := d.reg.Gather()
	for _, f := range table {
		if len(f.Metric) > 0 {
			fams = append(fams, f)
		}
	}
	slices.SortFunc(fams, func(a, b *dto.MetricFamily) int { return cmp.Compare(a.GetName(), b.GetName()) })
	return fams, err
}

var (
	raftState         = desc("raft_state", "1 for the Raft state this director is in (leader, follower, candidate, shutdown), 0 for the others.", "state")
	raftLeader        = desc("raft_leader", "1 if this director is the Raft leader: it holds the VIPs. Filter dashboards on it (followers hold synced connections).")
	raftHasLeader     = desc("raft_has_leader", "1 if this director knows a leader.")
	raftServing       = desc("raft_serving", "1 if this director's replica may be read: caught up, and leading or in touch with its leader.")
	raftTerm          = desc("raft_term", "Current Raft term.")
	raftLastLog       = desc("raft_last_log_index", "Index of the last entry in this director's Raft log.")
	raftCommit        = desc("raft_commit_index", "Raft commit index known to this director.")
	raftApplied       = desc("raft_applied_index", "Raft index applied to this director's state.")
	raftLastContact   = desc("raft_last_contact_seconds", "Seconds since this follower last heard from its leader (0 on the leader; absent before any contact).")
	raftLeaderChanges = desc("raft_leader_changes_total", "Leaders this director has learnt of since it started (elections and transfers).")
	raftVoters        = desc("raft_voters", "Voters in the Raft configuration.")
	raftUnreachable   = desc("raft_voters_unreachable", "Voters whose heartbeats fail, as the leader sees them (0 on followers, which cannot tell).")
	raftApply         = desc("raft_apply_duration_seconds", "Time to commit and apply a write, on the leader that took it.")
	raftPeerUp        = desc("raft_peer_reachable", "On the leader: 1 if the voter answers its heartbeats.", "peer")
	raftPeerContact   = desc("raft_peer_last_contact_seconds", "On the leader: seconds since the voter last answered (absent if it never did this term).", "peer")
	raftPeerLag       = desc("raft_peer_lag_entries", "On the leader: how many entries the voter's log was behind the leader's at its last answer.", "peer")

	vipHeld      = desc("vip_held", "1 if this director holds the VIP on its interface (the leader's), 0 if not.", "vip", "interface")
	vipSince     = desc("vip_held_since_timestamp_seconds", "When this director last put the VIP on its interface (held VIPs only).", "vip", "interface")
	vipAnnounced = desc("vip_announcements_total", "Gratuitous ARPs (garp, each a request and a reply) and unsolicited neighbour advertisements (na) sent for the VIP.", "vip", "interface", "kind")
	vipErrors    = desc("vip_errors_total", "Failures to announce the VIP, put it on the interface or take it off (claims and refreshes), or to fence it (op fence).", "vip", "interface", "op")
	vipLapses    = desc("vip_fence_lapses_total", "Fence renewals that came after the VIP's previous lease had run out: the kernel did not answer ARP/NDP for it in between (leadership verified later than the lease).", "vip", "interface")
	syncRunning  = desc("sync_daemon_running", "1 if the IPVS connection-sync daemon runs in this state (master on the leader, backup everywhere).", "state")

	recPasses      = desc("reconciler_passes_total", "IPVS reconciler passes (syncs after state changes, repairs every interval).")
	recPassTime    = desc("reconciler_pass_duration_seconds", "Time spent in IPVS reconciler passes.")
	recLastPass    = desc("reconciler_last_pass_duration_seconds", "Duration of the last IPVS reconciler pass.")
	recOps         = desc("reconciler_operations_total", "Kernel operations of the IPVS reconciler, by kind.", "op")
	recErrors      = desc("reconciler_errors_total", "Kernel operations of the IPVS reconciler that failed (retried on the next pass).")
	recLastError   = desc("reconciler_last_error_timestamp_seconds", "When the last IPVS reconciler operation failed (absent if none did).")
	recRepairs     = desc("reconciler_drift_repairs_total", "Programmed IPVS services found deleted or edited in the kernel and repaired.")
	recServices    = desc("reconciler_services", "IPVS services programmed by raftlvs on this director.")
	recDests       = desc("reconciler_real_servers", "IPVS destinations programmed by raftlvs on this director.")
	recForeign     = desc("reconciler_foreign_services", "IPVS services in the kernel that raftlvs did not create (left alone).")
	agentsByState  = desc("agents", "Real-server agents in the gossip pool, by gossip state (alive, suspect, dead, left).", "state")
	agentsDraining = desc("agents_draining", "Alive agents that announce they are draining (stopping).")
	registrarWrite = desc("registrar_writes_total", "Real-server writes the agent registrar committed while this director led, by action.", "action")
	healthTrans    = desc("health_transitions_total", "Committed health transitions of real servers, by the health they went to (the same on every director).", "to")
	adminTrans     = desc("admin_transitions_total", "Committed admin transitions of real servers: drains (to draining), back in rotation (to active), drained and removed (to removed).", "to")
)

type directorCollector struct{ src DirectorSources }

// Describe sends no descriptions: the collector is unchecked, since which series exist
// depends on the director (a witness has no IPVS) and on its state.
func (c *directorCollector) Describe(chan<- *prometheus.Desc) {}

func (c *directorCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.src.Now()
	c.collectRaft(ch, now)
	var vips []fsm.VIP
	c.src.State.View(func(st *fsm.State) { vips = st.HeldVIPs() })
	if dp := c.src.DataPlane; dp != nil {
		st := dp.Status(false) // the counters are the table's (Director.Gather)
		collectVIPs(ch, dp.VIPInterface(), vips, dp.VIPStats())
		collectSync(ch, st.SyncDaemons)
		collectReconciler(ch, dp.ReconcilerStats())
	}
	if c.src.Agents != nil {
		collectAgents(ch, c.src.Agents())
	}
	if r := c.src.Registrar; r != nil {
		v := r.Values()
		ch <- counter(registrarWrite, float64(v.Registered), "register")
		ch <- counter(registrarWrite, float64(v.Drained), "drain")
		ch <- counter(registrarWrite, float64(v.Removed), "remove")
	}
	if t := c.src.Transitions; t != nil {
		v := t.Counts()
		ch <- counter(healthTrans, float64(v.HealthUp), string(fsm.HealthUp))
		ch <- counter(healthTrans, float64(v.HealthDown), string(fsm.HealthDown))
		ch <- counter(healthTrans, float64(v.HealthUnknown), string(fsm.HealthUnknown))
		ch <- counter(adminTrans, float64(v.Drains), string(fsm.Draining))
		ch <- counter(adminTrans, float64(v.Activations), string(fsm.Active))
		ch <- counter(adminTrans, float64(v.DrainedRemovals), "removed")
	}
	if c.src.Checks != nil {
		collectChecks(ch, c.src.Checks.Status(), now)
	}
}

func (c *directorCollector) collectRaft(ch chan<- prometheus.Metric, now time.Time) {
	rs := c.src.Raft.RaftStats()
	for _, s := range []string{"Leader", "Follower", "Candidate", "Shutdown"} {
		ch <- gauge(raftState, boolValue(rs.State == s), lower(s))
	}
	ch <- gauge(raftLeader, boolValue(rs.State == "Leader"))
	ch <- gauge(raftHasLeader, boolValue(rs.LeaderID != ""))
	ch <- gauge(raftServing, boolValue(rs.Serving))
	ch <- gauge(raftTerm, float64(rs.Term))
	ch <- gauge(raftLastLog, float64(rs.LastLogIndex))
	ch <- gauge(raftCommit, float64(rs.CommitIndex))
	ch <- gauge(raftApplied, float64(rs.AppliedIndex))
	switch {
	case rs.State == "Leader":
		ch <- gauge(raftLastContact, 0)
	case !rs.LastContact.IsZero():
		ch <- gauge(raftLastContact, max(now.Sub(rs.LastContact).Seconds(), 0))
	}
	ch <- counter(raftLeaderChanges, float64(rs.LeaderChanges))
	ch <- gauge(raftVoters, float64(rs.Voters))
	ch <- gauge(raftUnreachable, float64(rs.Unreachable))
	ch <- histogram(raftApply, rs.Apply)
	for _, p := range rs.Peers {
		ch <- gauge(raftPeerUp, boolValue(p.Reachable), p.ID)
		if p.LastContact.IsZero() {
			continue
		}
		ch <- gauge(raftPeerContact, max(now.Sub(p.LastContact).Seconds(), 0), p.ID)
		ch <- gauge(raftPeerLag, float64(rs.LastLogIndex-min(p.LastLogIndex, rs.LastLogIndex)), p.ID)
	}
}

// histogram turns a cluster.Latencies into a Prometheus histogram (cumulative buckets,
// seconds).
func histogram(d *prometheus.Desc, l cluster.Latencies) prometheus.Metric {
	buckets := make(map[float64]uint64, len(l.Bounds))
	var cum uint64
	for i, b := range l.Bounds {
		cum += l.Counts[i]
		buckets[b.Seconds()] = cum
	}
	return prometheus.MustNewConstHistogram(d, l.Count, l.Sum.Seconds(), buckets)
}

// collectVIPs reports every VIP of the cluster, held here or not, and any other this
// director has counters for (a VIP whose service went).
// collectVIPs sends every VIP the cluster has this director hold when it leads, and any
// other it held: on its interface (defaultIf when the cluster names none), held or not.
func collectVIPs(ch chan<- prometheus.Metric, defaultIf string, cluster []fsm.VIP, stats []vip.VIPStats) {
	type key struct {
		addr   netip.Addr
		ifname string
	}
	byKey := make(map[key]vip.VIPStats, len(stats))
	var all []key
	for _, s := range stats {
		k := key{s.Addr, cmp.Or(s.Interface, defaultIf)}
		byKey[k] = s
		all = append(all, k)
	}
	for _, v := range cluster {
		if k := (key{v.Addr(), cmp.Or(v.Interface, defaultIf)}); !slices.Contains(all, k) {
			all = append(all, k)
		}
	}
	slices.SortFunc(all, func(a, b key) int { return cmp.Or(a.addr.Compare(b.addr), cmp.Compare(a.ifname, b.ifname)) })
	for _, k := range all {
		s := byKey[k]
		v, ifname := k.addr.String(), k.ifname
		ch <- gauge(vipHeld, boolValue(s.Held), v, ifname)
		if s.Held {
			ch <- gauge(vipSince, float64(s.Since.UnixMilli())/1e3, v, ifname)
		}
		if k.addr.Is4() {
			ch <- counter(vipAnnounced, float64(s.GARPs), v, ifname, "garp")
		} else {
			ch <- counter(vipAnnounced, float64(s.NAs), v, ifname, "na")
		}
		ch <- counter(vipErrors, float64(s.AnnounceErrors), v, ifname, "announce")
		ch <- counter(vipErrors, float64(s.AddErrors), v, ifname, "add")
		ch <- counter(vipErrors, float64(s.RemoveErrors), v, ifname, "remove")
		ch <- counter(vipErrors, float64(s.FenceErrors), v, ifname, "fence")
		ch <- counter(vipLapses, float64(s.FenceLapses), v, ifname)
	}
}

func collectSync(ch chan<- prometheus.Metric, daemons []syncd.Daemon) {
	for _, s := range []syncd.State{syncd.Master, syncd.Backup} {
		running := slices.ContainsFunc(daemons, func(d syncd.Daemon) bool { return d.State == s })
		ch <- gauge(syncRunning, boolValue(running), s.String())
	}
}

func collectReconciler(ch chan<- prometheus.Metric, s ipvs.Stats) {
	ch <- counter(recPasses, float64(s.Passes))
	ch <- prometheus.MustNewConstSummary(recPassTime, uint64(s.Passes), s.PassTime.Seconds(), nil)
	ch <- gauge(recLastPass, s.LastPass.Duration.Seconds())
	for _, op := range []struct {
		name string
		n    int
	}{
		{"service_dump", s.Ops.ServiceDumps}, {"destination_dump", s.Ops.DestinationDumps},
		{"service_add", s.Ops.ServiceAdds}, {"service_update", s.Ops.ServiceUpdates}, {"service_delete", s.Ops.ServiceDeletes},
		{"destination_add", s.Ops.DestinationAdds}, {"destination_update", s.Ops.DestinationUpdates}, {"destination_delete", s.Ops.DestinationDeletes},
	} {
		ch <- counter(recOps, float64(op.n), op.name)
	}
	ch <- counter(recErrors, float64(s.Errors))
	if !s.LastErrorAt.IsZero() {
		ch <- gauge(recLastError, float64(s.LastErrorAt.UnixMilli())/1e3)
	}
	ch <- counter(recRepairs, float64(s.Repairs))
	ch <- gauge(recServices, float64(s.Services))
	ch <- gauge(recDests, float64(s.Destinations))
	ch <- gauge(recForeign, float64(s.Foreign))
}

func collectAgents(ch chan<- prometheus.Metric, agents []api.Agent) {
	counts := map[string]int{"alive": 0, "suspect": 0, "dead": 0, "left": 0}
	draining := 0
	for _, a := range agents {
		counts[a.State]++
		if a.State == "alive" && a.Draining {
			draining++
		}
	}
	for _, s := range []string{"alive", "suspect", "dead", "left"} {
		ch <- gauge(agentsByState, float64(counts[s]), s)
	}
	ch <- gauge(agentsDraining, float64(draining))
}

func lower(s string) string {
	b := []byte(s)
	if len(b) > 0 && b[0] >= 'A' && b[0] <= 'Z' {
		b[0] += 'a' - 'A'
	}
	return string(b)
}
