package healthd

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/fnv"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// probeKey identifies a probe: an address and port and the parts of a spec that change
// what is sent or when. Real servers whose targets share a key share one probe (Seesaw's
// dedup; keepalived users ask for it, #2111 #2358): rise, fall and start_down are each
// server's own and stay out of the key.
type probeKey struct {
	to   netip.AddrPort
	spec string
}

func keyOf(t Target) probeKey {
	c := *t.Check
	c.Port, c.Rise, c.Fall, c.Retries, c.StartDown = 0, 0, 0, 0, false
	js, err := json.Marshal(&c)
	if err != nil {
		// A HealthCheck always marshals; should it not, no two targets share the probe.
		js = []byte(t.Key.Service + "/" + t.Key.Addr.String())
	}
	return probeKey{to: unmapped(t.To), spec: string(js)}
}

func unmapped(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// hash spreads probes: the same target lands at the same offset on every director and
// after every restart, and different ones spread evenly.
func (k probeKey) hash() uint64 {
	h := fnv.New64a()
	a := k.to.Addr().As16()
	h.Write(a[:])
	h.Write(binary.BigEndian.AppendUint16(nil, k.to.Port()))
	h.Write([]byte(k.spec))
	return h.Sum64()
}

// probe is one scheduled check and its subscribers, the real servers it decides for.
type probe struct {
	key      probeKey
	spec     *fsm.HealthCheck
	checker  Checker
	exec     bool // runs in the exec pool
	interval time.Duration
	timeout  time.Duration
	jitter   time.Duration
	offset   time.Duration // of the first run within the interval
	rng      *rand.PCG
	subs     []*server

	nominal time.Time // the grid point of the next run
	next    time.Time // nominal plus this run's jitter
	index   int       // in the due heap; -1 when out of it

	queued, running bool
	runningSince    time.Time
	stuckLogged     bool
	removed         bool

	last                Result
	successes, failures int // in a row
	runs, overruns      uint64
}

// server is one real server's subscription to a probe.
type server struct {
	key     fsm.RSKey
	spec    *fsm.HealthCheck
	probe   *probe
	tracker *Tracker
}

func newProbe(k probeKey, spec *fsm.HealthCheck, c Checker, now time.Time) *probe {
	h := k.hash()
	p := &probe{
		key: k, spec: spec, checker: c, exec: spec.Type == fsm.CheckExec,
		interval: spec.Interval(), timeout: spec.Timeout(), jitter: spec.Jitter(),
		rng: rand.NewPCG(h, h^0x9e3779b97f4a7c15), index: -1,
	}
	p.offset = time.Duration(h % uint64(p.interval))
	p.start(now)
	return p
}

// start places the first run: its offset into the interval from now.
func (p *probe) start(now time.Time) {
	p.nominal = now.Add(p.offset)
	p.next = p.nominal
}

// advance moves to the next grid point after a run came due at now, skipping any the
// scheduler fell a whole interval behind on; it returns how many it skipped.
func (p *probe) advance(now time.Time) (skipped uint64) {
	p.nominal = p.nominal.Add(p.interval)
	if late := now.Sub(p.nominal); late >= 0 {
		n := late/p.interval + 1
		p.nominal = p.nominal.Add(n * p.interval)
		skipped = uint64(n)
	}
	p.next = p.nominal
	if p.jitter > 0 {
		p.next = p.next.Add(time.Duration(p.rng.Uint64() % uint64(p.jitter)))
	}
	return skipped
}

// dueHeap orders probes by their next run (container/heap).
type dueHeap []*probe

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].next.Before(h[j].next) }
func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *dueHeap) Push(x any) {
	p := x.(*probe)
	p.index = len(*h)
	*h = append(*h, p)
}
func (h *dueHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = nil
	p.index = -1
	*h = old[:len(old)-1]
	return p
}

// brokenCheck stands in for a spec that cannot run here: every run reports why, so the
// real server's status says so instead of the check silently not running.
type brokenCheck struct{ err error }

func (b brokenCheck) Check(context.Context, netip.AddrPort) Result {
	kind := ErrBadCheck
	if errors.Is(b.err, ErrPolicy) {
		kind = ErrPolicy
	}
	return down(kind, b.err, "%v", b.err)
}
