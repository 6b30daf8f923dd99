package cluster

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// EventKind names what an Event reports.
type EventKind string

const (
	// EventLeader: the leader this node knows changed (Leader is "" when it lost it).
	EventLeader EventKind = "leader"
	// EventPeerUnreachable: as leader, this node's heartbeats to Peer started failing.
	EventPeerUnreachable EventKind = "peer-unreachable"
	// EventPeerReachable: as leader, heartbeats to Peer succeed again.
	EventPeerReachable EventKind = "peer-reachable"
)

// Event is a change of the cluster as this node sees it, for the director's timeline
// (Config.OnEvent).
type Event struct {
	At     time.Time
	Kind   EventKind
	Leader string // EventLeader: the new leader's id, "" for none
	Peer   string // EventPeer*: the voter's id
	Term   uint64
}

// Contact is how a voter is doing as seen from this node.
type Contact string

const (
	ContactSelf        Contact = "self"
	ContactReachable   Contact = "reachable"
	ContactUnreachable Contact = "unreachable"
	// ContactUnknown: a follower sees only its leader; the other voters' heartbeats are
	// the leader's business.
	ContactUnknown Contact = "unknown"
)

// contacts is what this node learnt of its peers from raft's observations: as leader,
// the voters whose heartbeats fail (raft reports failures and resumptions, not each
// success), and in any role how often the leader changed.
type contacts struct {
	mu      sync.Mutex
	failing map[string]peerFailure // voter id → since when its heartbeats fail
	leader  string                 // the last leader observed, "" for none
	since   time.Time              // when it was observed

	leaderChanges atomic.Uint64
}

type peerFailure struct {
	since time.Time // first failure of this run
}

func (c *contacts) init() { c.failing = map[string]peerFailure{} }

// observe records one observation and returns the event it makes, if any. answered is
// when a failing peer last answered a heartbeat (the transport knows): a failure it
// answered after is over, though its resumed observation was dropped.
func (c *contacts) observe(data any, now time.Time, answered func(id string) time.Time) (Event, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch o := data.(type) {
	case raft.LeaderObservation:
		id := string(o.LeaderID)
		if id == c.leader {
			return Event{}, false
		}
		c.leader, c.since = id, now
		// A new term, a new set of followers: what the last leader saw is not ours.
		clear(c.failing)
		if id != "" {
			c.leaderChanges.Add(1)
		}
		return Event{At: now, Kind: EventLeader, Leader: id}, true
	case raft.FailedHeartbeatObservation:
		id := string(o.PeerID)
		if f, ok := c.failing[id]; ok && !answered(id).After(f.since) {
			return Event{}, false // the same failure, still going on
		}
		c.failing[id] = peerFailure{since: now}
		return Event{At: now, Kind: EventPeerUnreachable, Peer: id}, true
	case raft.PeerObservation:
		if o.Removed {
			delete(c.failing, string(o.Peer.ID))
		}
		return Event{}, false
	case raft.ResumedHeartbeatObservation:
		id := string(o.PeerID)
		if _, ok := c.failing[id]; !ok {
			return Event{}, false
		}
		delete(c.failing, id)
		return Event{At: now, Kind: EventPeerReachable, Peer: id}, true
	}
	return Event{}, false
}

// leaderSince is when the current leader was observed.
func (c *contacts) leaderSince() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.since
}

// failure returns the heartbeat failure of a voter, as leader, unless the voter answered
// since (answered is when it last did): raft's resumed observation may have been
// dropped (the observer never blocks raft), and an answer outweighs a stale failure.
func (c *contacts) failure(id string, answered time.Time) (peerFailure, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.failing[id]
	if ok && answered.After(f.since) {
		return peerFailure{}, false
	}
	return f, ok
}

// voterContact fills in how voter v is doing, as this node knows it: as leader from its
// heartbeats, as follower only for the leader (its own last contact) and itself.
func (n *Node) voterContact(v *Voter, leaderID string, leading bool) {
	switch {
	case v.ID == n.cfg.NodeID:
		v.Contact, v.LastLogIndex = ContactSelf, n.raft.LastIndex()
	case leading:
		var lastLog uint64
		v.Contact, v.LastContact, lastLog = n.peerContact(raft.ServerID(v.ID))
		if !v.LastContact.IsZero() {
			v.LastLogIndex = lastLog
		}
		if f, ok := n.contacts.failure(v.ID, v.LastContact); ok {
			v.Contact, v.FailingSince = ContactUnreachable, f.since
		}
	case v.ID == leaderID:
		v.LastContact = n.raft.LastContact()
		v.Contact = ContactReachable
		if time.Since(v.LastContact) >= 2*n.cfg.HeartbeatTimeout {
			v.Contact = ContactUnreachable
		}
	default:
		v.Contact = ContactUnknown
	}
}

// answeredAt is when peer id last answered this leader's heartbeats.
func (n *Node) answeredAt(id string) time.Time { return n.trans.lastAnswer(raft.ServerID(id)).at }

// peerContact is how a peer is doing as the leader sees it: reachable while it answered a
// heartbeat within two heartbeat timeouts (heartbeats go out ten times a timeout), and
// for as long after this node took over; unreachable otherwise, with when it last answered.
func (n *Node) peerContact(id raft.ServerID) (Contact, time.Time, uint64) {
	a := n.trans.lastAnswer(id)
	grace := 2 * n.cfg.HeartbeatTimeout
	if time.Since(a.at) < grace || time.Since(n.contacts.leaderSince()) < grace {
		return ContactReachable, a.at, a.lastLog
	}
	return ContactUnreachable, a.at, a.lastLog
}

// applyBuckets are the upper bounds of the apply-latency histogram: a commit on a LAN
// trio with fsync takes a millisecond or so, a large batch seconds.
var applyBuckets = []time.Duration{
	500 * time.Microsecond, time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
	250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2500 * time.Millisecond, 10 * time.Second,
}

// Latencies is a histogram of durations: Counts[i] are the observations at most
// Bounds[i] (not cumulative), Counts[len(Bounds)] the ones above.
type Latencies struct {
	Bounds []time.Duration
	Counts []uint64
	Count  uint64
	Sum    time.Duration
}

// latencyHistogram records durations without a lock.
type latencyHistogram struct {
	counts [14]atomic.Uint64 // len(applyBuckets)+1
	count  atomic.Uint64
	sumNS  atomic.Int64
}

func (h *latencyHistogram) observe(d time.Duration) {
	i := len(applyBuckets)
	for j, b := range applyBuckets {
		if d <= b {
			i = j
			break
		}
	}
	h.counts[i].Add(1)
	h.sumNS.Add(int64(d))
	h.count.Add(1)
}

func (h *latencyHistogram) snapshot() Latencies {
	l := Latencies{Bounds: applyBuckets, Counts: make([]uint64, len(applyBuckets)+1)}
	for i := range l.Counts {
		l.Counts[i] = h.counts[i].Load()
	}
	l.Count, l.Sum = h.count.Load(), time.Duration(h.sumNS.Load())
	return l
}

// RaftStats are this node's Raft figures, for metrics: cheap to read (no round trip
// through raft's main loop but the configuration's).
type RaftStats struct {
	State        string // Follower, Candidate, Leader, Shutdown
	LeaderID     string
	Term         uint64
	LastLogIndex uint64
	CommitIndex  uint64
	AppliedIndex uint64
	// LastContact is the last message from the leader, on a follower; zero on the leader.
	LastContact time.Time
	// LeaderChanges counts the leaders this node has learnt of since it started.
	LeaderChanges uint64
	// Serving is Serving(): this node's state may be read.
	Serving bool
	// Voters and Unreachable count the voters of the configuration and, on the leader,
	// those whose heartbeats fail.
	Voters, Unreachable int
	// Peers are the other voters as the leader sees them (none on a follower).
	Peers []PeerStats
	// Apply is the latency of the writes this node committed as leader (Apply, from the
	// call to the FSM's verdict), successes only.
	Apply Latencies
}

// PeerStats is another voter as the leader sees it: whether it answers, when it last
// did, and the last index of its log then (zero: never answered this node).
type PeerStats struct {
	ID           string
	Reachable    bool
	LastContact  time.Time
	LastLogIndex uint64
}

// RaftStats reads this node's Raft figures.
func (n *Node) RaftStats() RaftStats {
	leaderID, _ := n.Leader()
	st := RaftStats{
		State:         n.raft.State().String(),
		LeaderID:      leaderID,
		Term:          n.raft.CurrentTerm(),
		LastLogIndex:  n.raft.LastIndex(),
		CommitIndex:   n.raft.CommitIndex(),
		AppliedIndex:  n.raft.AppliedIndex(),
		LeaderChanges: n.contacts.leaderChanges.Load(),
		Serving:       n.Serving(),
		Apply:         n.applyLatency.snapshot(),
	}
	leading := n.IsLeader()
	if !leading {
		st.LastContact = n.raft.LastContact()
	}
	f := n.raft.GetConfiguration()
	if f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			if s.Suffrage != raft.Voter {
				continue
			}
			st.Voters++
			if !leading || string(s.ID) == n.cfg.NodeID {
				continue
			}
			c, last, lastLog := n.peerContact(s.ID)
			_, failing := n.contacts.failure(string(s.ID), last)
			reachable := !failing && c == ContactReachable
			if !reachable {
				st.Unreachable++
			}
			st.Peers = append(st.Peers, PeerStats{ID: string(s.ID), Reachable: reachable, LastContact: last, LastLogIndex: lastLog})
		}
	}
	return st
}
