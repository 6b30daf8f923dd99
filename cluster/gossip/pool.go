// Package gossip is the memberlist pool that directors and real-server agents share.
// Every member announces a small Meta (a director's API address; an agent's real-server
// address and the services it serves). Gossip is always encrypted. See DESIGN.md.
package gossip

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Member states, as memberlist names them. memberlist does not report suspicion to its
// delegates (its Node.State is never filled in: hashicorp/memberlist #266, PR #321), so
// Members reports StateAlive, StateDead and StateLeft only.
const (
	StateAlive = memberlist.StateAlive
	StateDead  = memberlist.StateDead
	StateLeft  = memberlist.StateLeft
)

// StateName names a member's state as the status endpoint and the metrics do: alive,
// dead, left, or suspect (which Members never reports, see above).
func (m Member) StateName() string {
	switch m.State {
	case StateAlive:
		return "alive"
	case StateDead:
		return "dead"
	case StateLeft:
		return "left"
	}
	return "suspect"
}

// ErrShutdown is returned by calls on a pool after Shutdown.
var ErrShutdown = errors.New("gossip pool shut down")

// Member is one member of the pool as this member sees it.
type Member struct {
	Name  string
	Addr  netip.AddrPort // gossip address
	State memberlist.NodeStateType
	Meta  Meta
	// MetaErr is why the member's metadata could not be decoded (a newer version, say);
	// Meta is then zero. Such a member is still listed, by name.
	MetaErr error
}

// Pool is this process's membership in the gossip pool.
type Pool struct {
	cfg    Config
	log    *slog.Logger
	ml     *memberlist.Memberlist
	events *eventQueue

	announce  sync.Mutex     // serializes UpdateMeta and Leave
	localAddr netip.AddrPort // set once ml is made

	mu      sync.Mutex
	meta    []byte // encoded local meta, what memberlist announces
	local   Meta
	leaving bool
	members map[string]*record
	closed  bool

	stop chan struct{}
	wg   sync.WaitGroup
}

type record struct {
	Member
	since time.Time // when it entered its state; dead and left records expire from it
}

// New starts a member announcing meta. It listens at once; when cfg.Join is set it joins
// in the background (see Config.Join).
func New(cfg Config, meta Meta) (*Pool, error) {
	cfg = cfg.withDefaults(meta)
	if err := cfg.validate(meta); err != nil {
		return nil, err
	}
	enc, err := meta.Encode()
	if err != nil {
		return nil, fmt.Errorf("gossip member %s: %w", cfg.NodeName, err)
	}
	p := &Pool{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "gossip"),
		events:  newEventQueue(cfg.EventBuffer),
		meta:    enc,
		local:   meta,
		members: map[string]*record{},
		stop:    make(chan struct{}),
	}
	ml, err := memberlist.Create(p.memberlistConfig())
	if err != nil {
		p.events.close()
		return nil, fmt.Errorf("start gossip member %s on %s:%d: %w", cfg.NodeName, cfg.BindAddr, cfg.BindPort, err)
	}
	p.ml = ml
	// Read once: memberlist hands out its own node record, which it rewrites under its
	// lock on every meta update; the address never changes.
	p.localAddr = nodeAddr(ml.LocalNode())
	if len(cfg.Join) > 0 {
		p.wg.Add(1)
		go p.rejoinLoop()
	}
	return p, nil
}

func (p *Pool) memberlistConfig() *memberlist.Config {
	c := memberlist.DefaultLANConfig()
	c.Name = p.cfg.NodeName
	c.BindAddr = p.cfg.BindAddr
	c.BindPort = p.cfg.BindPort
	c.AdvertiseAddr = p.cfg.AdvertiseAddr
	c.AdvertisePort = cmp.Or(p.cfg.AdvertisePort, p.cfg.BindPort)
	c.SecretKey = p.cfg.SecretKey
	c.Label = p.cfg.Label
	c.ProbeInterval = p.cfg.ProbeInterval
	c.ProbeTimeout = p.cfg.ProbeTimeout
	c.SuspicionMult = p.cfg.SuspicionMult
	c.GossipInterval = p.cfg.GossipInterval
	c.Logger = newStdLogger(p.cfg.Logger)
	d := delegate{p}
	c.Delegate = d
	c.Events = d
	return c
}

// Join contacts the members at addrs (host:port) and merges their view of the pool. It
// fails only if none of them could be reached.
func (p *Pool) Join(addrs []string) (int, error) {
	if p.isClosed() {
		return 0, ErrShutdown
	}
	n, err := p.ml.Join(addrs)
	if err != nil {
		return n, fmt.Errorf("join gossip pool via %v: %w", addrs, err)
	}
	return n, nil
}

// rejoinLoop joins cfg.Join now and again whenever no other member is alive: peers that
// were not up yet when this member started, or a pool this member lost entirely
// (memberlist never dials a dead member again on its own).
func (p *Pool) rejoinLoop() {
	defer p.wg.Done()
	t := time.NewTicker(p.cfg.RejoinInterval)
	defer t.Stop()
	for {
		if p.ml.NumMembers() <= 1 {
			if n, err := p.Join(p.cfg.Join); err != nil {
				p.log.Warn("gossip join failed; retrying", "addrs", p.cfg.Join, "every", p.cfg.RejoinInterval, "err", err)
			} else {
				p.log.Info("joined gossip pool", "contacted", n)
			}
		}
		select {
		case <-t.C:
		case <-p.stop:
			return
		}
	}
}

// Members returns every member this member knows, itself included, by name: live ones,
// and failed or departed ones for Config.RetainDead.
func (p *Pool) Members() []Member {
	now := time.Now()
	p.mu.Lock()
	out := make([]Member, 0, len(p.members))
	for name, r := range p.members {
		if r.State != StateAlive && now.Sub(r.since) > p.cfg.RetainDead {
			delete(p.members, name)
			continue
		}
		out = append(out, r.Member)
	}
	p.mu.Unlock()
	slices.SortFunc(out, func(a, b Member) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Events delivers membership changes in order. Read it promptly: when more than
// Config.EventBuffer events wait, they are replaced by one EventResync, after which the
// consumer re-reads Members(). memberlist is never blocked. The channel is closed by
// Shutdown. One consumer only.
func (p *Pool) Events() <-chan Event { return p.events.out }

// UpdateMeta announces new metadata and waits up to timeout for the announcement to be
// sent. Metadata that would not fit memberlist's limit is refused and nothing changes.
func (p *Pool) UpdateMeta(meta Meta, timeout time.Duration) error {
	p.announce.Lock()
	defer p.announce.Unlock()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrShutdown
	}
	if meta.ID != p.local.ID {
		p.mu.Unlock()
		return fmt.Errorf("update gossip meta of %s: %w: id cannot change to %q", p.local.ID, ErrBadMeta, meta.ID)
	}
	enc, err := meta.encode(p.leaving)
	if err != nil {
		p.mu.Unlock()
		return fmt.Errorf("update gossip meta of %s: %w", p.local.ID, err)
	}
	p.meta, p.local = enc, meta
	p.mu.Unlock()
	// Never call memberlist holding p.mu: it calls our delegate under its own lock.
	// A broadcast memberlist queued just after this member joined was seen to stay unsent
	// (the others heard of the change only at the next push-pull, 30 s on): one that is
	// not out within rebroadcastAfter is made again, which goes out at once.
	deadline := time.Now().Add(timeout)
	err = p.ml.UpdateNode(min(timeout, rebroadcastAfter)) // 0: memberlist waits for ever
	for err != nil && timeout > 0 && time.Until(deadline) > 0 {
		err = p.ml.UpdateNode(min(time.Until(deadline), rebroadcastAfter))
	}
	if err != nil {
		return fmt.Errorf("announce gossip meta of %s: %w", p.local.ID, err)
	}
	return nil
}

// rebroadcastAfter is how long UpdateMeta waits for one broadcast before it makes another.
const rebroadcastAfter = 500 * time.Millisecond

// Leave tells the pool this member is leaving, so the others report it as StateLeft (a
// graceful leave, drained) rather than StateDead (a failure). Call Shutdown afterwards.
//
// memberlist's leave notification does not say which it was (see the State constants),
// so Leave first announces a leaving flag in the metadata; a member that receives the
// departure before that announcement reports a failure, which is the safe mistake.
func (p *Pool) Leave(timeout time.Duration) error {
	p.announce.Lock()
	defer p.announce.Unlock()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrShutdown
	}
	enc, err := p.local.encode(true)
	if err != nil { // cannot happen: the same meta encoded before, and the flag takes no room
		p.mu.Unlock()
		return fmt.Errorf("leave gossip pool: %w", err)
	}
	p.meta, p.leaving = enc, true
	p.mu.Unlock()
	deadline := time.Now().Add(timeout)
	var errs []error
	if err := p.ml.UpdateNode(timeout); err != nil {
		errs = append(errs, fmt.Errorf("announce leaving: %w", err))
	}
	if err := p.ml.Leave(max(time.Until(deadline), time.Millisecond)); err != nil {
		errs = append(errs, fmt.Errorf("broadcast leave: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("leave gossip pool as %s: %w", p.cfg.NodeName, err)
	}
	return nil
}

// Shutdown stops this member without a goodbye (the others detect a failure unless Leave
// came first) and closes Events. It is safe to call more than once.
func (p *Pool) Shutdown() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	close(p.stop)
	p.wg.Wait()
	err := p.ml.Shutdown()
	p.events.close()
	if err != nil {
		return fmt.Errorf("shut down gossip member %s: %w", p.cfg.NodeName, err)
	}
	return nil
}

// LocalAddr is the gossip address other members reach this one at.
func (p *Pool) LocalAddr() netip.AddrPort { return p.localAddr }

func (p *Pool) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

func nodeAddr(n *memberlist.Node) netip.AddrPort {
	a, _ := netip.AddrFromSlice(n.Addr)
	return netip.AddrPortFrom(a.Unmap(), n.Port)
}

// delegate receives memberlist's callbacks. They run under memberlist's node lock, one at
// a time: they take only p.mu, never call memberlist, and never block.
type delegate struct{ p *Pool }

func (d delegate) NodeMeta(limit int) []byte {
	d.p.mu.Lock()
	defer d.p.mu.Unlock()
	return d.p.meta // Encode guarantees len ≤ MetaMaxSize == limit
}

func (delegate) NotifyMsg([]byte)                           {}
func (delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (delegate) LocalState(join bool) []byte                { return nil }
func (delegate) MergeRemoteState(buf []byte, join bool)     {}

func (d delegate) NotifyJoin(n *memberlist.Node)   { d.p.observe(EventJoin, n) }
func (d delegate) NotifyUpdate(n *memberlist.Node) { d.p.observe(EventUpdate, n) }
func (d delegate) NotifyLeave(n *memberlist.Node)  { d.p.observe(EventLeave, n) }

func (p *Pool) observe(t EventType, n *memberlist.Node) {
	m := Member{Name: n.Name, Addr: nodeAddr(n), State: StateAlive}
	meta, leaving, err := decodeMeta(n.Meta)
	if err != nil {
		m.MetaErr = err
		if t != EventLeave {
			p.log.Warn("gossip member announces metadata this build cannot read", "member", n.Name, "addr", m.Addr, "err", err)
		}
	} else {
		m.Meta = meta
	}
	if t == EventLeave {
		m.State, t = StateDead, EventFail
		if leaving {
			m.State, t = StateLeft, EventLeave
		}
	}
	p.mu.Lock()
	p.members[m.Name] = &record{Member: m, since: time.Now()}
	p.mu.Unlock()
	p.log.Debug("gossip member "+t.String(), "member", m.Name, "addr", m.Addr, "role", m.Meta.Role)
	p.events.push(Event{Type: t, Member: m})
}
