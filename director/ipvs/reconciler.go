package ipvs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// ReconcilerConfig configures a Reconciler.
type ReconcilerConfig struct {
	Kernel Kernel
	// StateDir holds the list of services this director owns (it survives restarts).
	StateDir string
	Logger   *slog.Logger
	// RepairInterval is how often Run dumps the services to repair drift (default 1 s; at
	// most a tenth of the time goes to repair passes, so a large table is dumped less often).
	RepairInterval time.Duration
	// SweepInterval is how long a rolling re-read of every service's destinations takes
	// (default 30 s): each repair pass re-reads a slice of them, at most MaxSweep.
	SweepInterval time.Duration
	// MaxSweep bounds the destination lists one repair pass re-reads (default 64), so a
	// large table costs a bounded background load: 10,000 services are swept in 157
	// passes instead of 30.
	MaxSweep int
}

// Reconciler keeps the kernel's IPVS table equal to the table the replicated state asks
// for, touching only the services it owns. One goroutine drives it (Run, or a test calling
// Sync and Repair); Table and Stats may be called from any goroutine.
type Reconciler struct {
	kernel      *countingKernel
	log         *slog.Logger
	owned       *ownership
	repairEvery time.Duration
	sweepEvery  time.Duration
	maxSweep    int

	passMu sync.Mutex // one pass at a time: the kernel handle is not concurrent-safe
	// desired follows the state one change set at a time (follow): cursor is how far it
	// has read the state's journal, names where each fsm service sits in it. Its entries
	// are never changed in place; programmed and snapshot share them.
	desired    Table
	cursor     fsm.Cursor
	names      map[string]ServiceKey
	programmed Table                   // what the kernel holds of the owned services, as last read or written
	suspect    map[ServiceKey]struct{} // re-read on the next repair pass
	repaired   bool                    // a full repair pass has run since start
	sweepKeys  []ServiceKey            // desired keys in order, for the rolling sweep
	sweepNext  int

	statusMu sync.Mutex
	status   Stats
	snapshot Table // programmed, as Table and Stats report it
	dests    int   // destinations in snapshot, kept as it changes: a pass must not count them
}

// Stats are the Reconciler's counters, for the director's status and metrics.
type Stats struct {
	Passes       int
	Errors       int // operations that failed, over all passes
	Ops          OpCounts
	LastPass     PassStats
	LastError    string
	LastErrorAt  time.Time
	Services     int // owned services programmed
	Destinations int
	Foreign      int // services in the kernel raftlvs does not own, left alone
}

// PassStats describe one pass.
type PassStats struct {
	Kind     string // "sync", "repair" or "repair-all"
	Ops      OpCounts
	Services int // services converged (changed or re-read)
	Errors   int
	Duration time.Duration
}

// NewReconciler loads the ownership list and returns a Reconciler. It touches the kernel
// only from Sync, Repair and Run.
func NewReconciler(cfg ReconcilerConfig) (*Reconciler, error) {
	if cfg.Kernel == nil {
		return nil, errors.New("ipvs reconciler: no kernel")
	}
	if cfg.StateDir == "" {
		return nil, errors.New("ipvs reconciler: no state directory for the owned-service list")
	}
	if cfg.MaxSweep <= 0 {
		cfg.MaxSweep = 64
	}
	owned, err := loadOwnership(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	r := &Reconciler{
		kernel:      &countingKernel{k: cfg.Kernel},
		log:         log.With("component", "ipvs"),
		owned:       owned,
		repairEvery: cmp.Or(max(cfg.RepairInterval, 0), time.Second), // ≤ 0: the default
		sweepEvery:  cmp.Or(max(cfg.SweepInterval, 0), 30*time.Second),
		maxSweep:    cfg.MaxSweep,
		desired:     Table{},
		names:       map[string]ServiceKey{},
		programmed:  Table{},
		suspect:     map[ServiceKey]struct{}{},
		snapshot:    Table{},
	}
	r.kernel.log = r.log
	return r, nil
}

// Sync programs the table st asks for. Only the services st's journal names since the
// last Sync are recomputed and diffed against what was last programmed (every service on
// the first call, after a snapshot restore, or when the journal cannot tell), and only
// the destinations of those that differ are read back and written: one change costs the
// same whatever the size of the table. The first call after start is a full repair pass.
func (r *Reconciler) Sync(st *fsm.State) (PassStats, error) {
	r.passMu.Lock()
	defer r.passMu.Unlock()
	return r.syncLocked(r.follow(st))
}

// follow brings the desired table up to st and returns the keys whose entry may have
// changed, or nil when any may have.
func (r *Reconciler) follow(st *fsm.State) map[ServiceKey]struct{} {
	cs, next := st.ChangesSince(r.cursor)
	r.cursor = next
	if cs.All {
		r.desired = Desired(st)
		r.names = make(map[string]ServiceKey, len(r.desired))
		for k, e := range r.desired {
			r.names[e.Name] = k
		}
		r.sweepKeys = nil
		return nil
	}
	changed := cs.Services()
	// Every changed service leaves first, then those still there come back under their
	// key: two services may swap addresses in one batch.
	before := make(map[ServiceKey]bool, len(changed))
	for name := range changed {
		if k, ok := r.names[name]; ok {
			before[k] = false
			delete(r.names, name)
			if e := r.desired[k]; e != nil && e.Name == name {
				delete(r.desired, k)
			}
		}
	}
	dirty := make(map[ServiceKey]struct{}, len(changed))
	rekeyed := false
	for name := range changed {
		st.WalkService(name, func(svc *fsm.Service, servers []*fsm.RealServer) {
			e := desiredEntry(svc, servers)
			k := e.Service.Key()
			r.desired[k], r.names[name] = e, k
			dirty[k] = struct{}{}
			if _, ok := before[k]; !ok {
				rekeyed = true
			}
			before[k] = true
		})
	}
	for k, back := range before {
		dirty[k] = struct{}{}
		rekeyed = rekeyed || !back
	}
	if rekeyed {
		r.sweepKeys = nil // the sweep's list of keys is rebuilt on the next repair
	}
	return dirty
}

// syncLocked converges the keys given (nil: every key desired or programmed) and those
// that failed before.
func (r *Reconciler) syncLocked(dirty map[ServiceKey]struct{}) (PassStats, error) {
	if !r.repaired {
		return r.repairLocked(true)
	}
	desired := r.desired
	p := r.beginPass("sync")
	keys := dirty
	if keys == nil {
		keys = make(map[ServiceKey]struct{}, len(desired))
		for k := range desired {
			keys[k] = struct{}{}
		}
		for k := range r.programmed {
			keys[k] = struct{}{}
		}
	}
	for k := range r.suspect {
		keys[k] = struct{}{}
	}
	var creates []ServiceKey
	var todo []ServiceKey
	for k := range keys {
		want, have := desired[k], r.programmed[k]
		_, suspect := r.suspect[k]
		switch {
		case want == nil && have == nil && !r.owned.owns(k):
			continue
		case want != nil && have != nil && !suspect && have.Equal(want):
			continue
		case want != nil && have == nil:
			creates = append(creates, k)
		}
		todo = append(todo, k)
	}
	if err := r.own(creates); err != nil {
		return r.endPass(p, err)
	}
	slices.SortFunc(todo, ServiceKey.Compare)
	var fresh []ServiceKey
	for _, k := range todo {
		var have *Service
		if e := r.programmed[k]; e != nil {
			have = &e.Service
		} else if desired[k] == nil {
			s := serviceFromKey(k) // owned, not programmed: a delete that failed before
			have = &s
		} else {
			fresh = append(fresh, k)
			continue
		}
		r.converge(p, k, desired[k], have)
	}
	r.create(p, fresh)
	return r.endPass(p, nil)
}

// Repair dumps the kernel's services once and repairs what differs from the desired
// table: owned services deleted or edited by hand, owned services no longer desired,
// services that failed earlier. It re-reads the destinations of those services and of the
// next slice of the rolling sweep.
func (r *Reconciler) Repair() (PassStats, error) {
	r.passMu.Lock()
	defer r.passMu.Unlock()
	return r.repairLocked(!r.repaired)
}

// RepairAll is Repair re-reading the destinations of every owned service.
func (r *Reconciler) RepairAll() (PassStats, error) {
	r.passMu.Lock()
	defer r.passMu.Unlock()
	return r.repairLocked(true)
}

func (r *Reconciler) repairLocked(all bool) (PassStats, error) {
	kind := "repair"
	if all {
		kind = "repair-all"
	}
	p := r.beginPass(kind)
	kernel, err := r.kernel.Services()
	if err != nil {
		return r.endPass(p, fmt.Errorf("dump IPVS services: %w", err))
	}
	sweep := r.sweepSlice(all)
	inKernel := make(map[ServiceKey]*Service, len(kernel))
	foreign := 0
	for i := range kernel {
		inKernel[kernel[i].Key()] = &kernel[i]
	}
	var creates []ServiceKey
	for k, want := range r.desired {
		switch {
		case inKernel[k] == nil:
			creates = append(creates, k)
		case !r.owned.owns(k):
			// The operator declared a service that exists already (set up by hand before
			// migrating, say): it is edited in place, never recreated.
			r.log.Info("taking over IPVS service created outside raftlvs", "service", k, "name", want.Name)
			creates = append(creates, k)
		}
	}
	if err := r.own(creates); err != nil {
		return r.endPass(p, err)
	}
	var todo []ServiceKey
	for k, have := range inKernel {
		want := r.desired[k]
		_, suspect := r.suspect[k]
		_, swept := sweep[k]
		switch {
		case want == nil && !r.owned.owns(k):
			foreign++
			continue
		case want != nil && !suspect && !swept && r.programmed[k] != nil && have.Equal(want.Service):
			continue
		}
		todo = append(todo, k)
	}
	for k := range r.desired {
		if inKernel[k] == nil {
			todo = append(todo, k) // never created, or deleted by hand
		}
	}
	slices.SortFunc(todo, ServiceKey.Compare)
	var fresh []ServiceKey
	for _, k := range todo {
		if want := r.desired[k]; want != nil && inKernel[k] == nil {
			if r.programmed[k] != nil {
				r.log.Info("IPVS service missing from the kernel, recreating it", "service", k, "name", want.Name)
			}
			fresh = append(fresh, k)
			continue
		}
		r.converge(p, k, r.desired[k], inKernel[k])
	}
	r.create(p, fresh)
	// Owned keys that are neither desired nor in the kernel are done with.
	for k := range r.owned.keys {
		if r.desired[k] == nil && inKernel[k] == nil {
			r.owned.remove(k)
			r.setProgrammed(k, nil)
		}
	}
	r.repaired = true
	r.statusMu.Lock()
	r.status.Foreign = foreign
	r.statusMu.Unlock()
	return r.endPass(p, nil)
}

// sweepSlice returns the services whose destinations this repair pass re-reads.
func (r *Reconciler) sweepSlice(all bool) map[ServiceKey]struct{} {
	if r.sweepKeys == nil {
		r.sweepKeys = slices.SortedFunc(maps.Keys(r.desired), ServiceKey.Compare)
		r.sweepNext = 0
	}
	n := len(r.sweepKeys)
	if !all {
		passes := max(int(r.sweepEvery/r.repairEvery), 1)
		n = min((len(r.sweepKeys)+passes-1)/passes, r.maxSweep)
	}
	out := make(map[ServiceKey]struct{}, n)
	for range n {
		if r.sweepNext >= len(r.sweepKeys) {
			r.sweepNext = 0
		}
		out[r.sweepKeys[r.sweepNext]] = struct{}{}
		r.sweepNext++
	}
	return out
}

// own records keys as owned before their services are created.
func (r *Reconciler) own(keys []ServiceKey) error {
	for _, k := range keys {
		r.owned.add(k)
	}
	return r.owned.save()
}

// createBatch is how many new services (each with its real servers) go to the kernel in
// one Apply: 10,000 services x 10 real servers are 40 Applies, about 860 system calls
// with Linux, where ipvsadm -R makes 110,000 round trips.
const createBatch = 256

// create adds services the kernel does not hold, with their real servers, many to a batch.
// The keys are owned already. A service any of whose writes failed (it existed after all,
// or the kernel refused something) goes through converge, which reads the kernel and
// finds out; converge also reports the error.
func (r *Reconciler) create(p *pass, keys []ServiceKey) {
	for chunk := range slices.Chunk(keys, createBatch) {
		var ops []Op
		for _, k := range chunk {
			want := r.desired[k]
			ops = append(ops, Op{Kind: OpAddService, Service: want.Service})
			for _, d := range want.Destinations {
				ops = append(ops, Op{Kind: OpAddDestination, Service: want.Service, Destination: d})
			}
		}
		errs := r.kernel.Apply(ops)
		for _, k := range chunk {
			want := r.desired[k]
			n := 1 + len(want.Destinations)
			failed := slices.ContainsFunc(errs[:n], func(err error) bool { return err != nil })
			errs = errs[n:]
			if failed {
				r.converge(p, k, want, nil)
				continue
			}
			p.stats.Services++
			delete(r.suspect, k)
			r.setProgrammed(k, want)
		}
	}
}

// converge makes the kernel's service k match want (nil: delete it). have is the kernel's
// service as last seen (nil: absent). It edits in place whatever can be edited and reads
// back the destinations of a service it did not just create, so edits made by hand to that
// service are repaired on the way. A failure marks the service for the next repair pass.
func (r *Reconciler) converge(p *pass, k ServiceKey, want *Entry, have *Service) {
	p.stats.Services++
	err := r.convergeService(k, want, have)
	if err != nil {
		p.fail(err)
		r.suspect[k] = struct{}{}
		return
	}
	delete(r.suspect, k)
}

func (r *Reconciler) convergeService(k ServiceKey, want *Entry, have *Service) error {
	if want == nil {
		if have != nil {
			if err := r.kernel.DeleteService(*have); err != nil && !isGone(err) {
				return fmt.Errorf("delete IPVS service %s: %w", k, err)
			}
		}
		r.owned.remove(k)
		r.setProgrammed(k, nil)
		return nil
	}
	present := have != nil
	if present && !have.Equal(want.Service) {
		err := r.kernel.UpdateService(want.Service)
		switch {
		case isGone(err):
			present = false
		case err != nil:
			return fmt.Errorf("update IPVS service %s (%s): %w", k, want.Name, err)
		}
	}
	created := false
	if !present {
		if err := r.own([]ServiceKey{k}); err != nil {
			return err
		}
		err := r.kernel.AddService(want.Service)
		switch {
		case err == nil:
			created = true
		case errors.Is(err, syscall.EEXIST):
			// Created by hand, or by us before a crash: take it over in place.
			if err := r.kernel.UpdateService(want.Service); err != nil {
				return fmt.Errorf("update IPVS service %s (%s): %w", k, want.Name, err)
			}
		default:
			return fmt.Errorf("add IPVS service %s (%s): %w", k, want.Name, err)
		}
	}
	var current []Destination
	if !created {
		var err error
		if current, err = r.kernel.Destinations(want.Service); err != nil {
			return fmt.Errorf("dump real servers of IPVS service %s (%s): %w", k, want.Name, err)
		}
	}
	if err := r.convergeDestinations(want, current); err != nil {
		return err
	}
	r.setProgrammed(k, want)
	return nil
}

// convergeDestinations adds, edits and deletes destinations so that the service holds
// exactly want.Destinations. It goes on after a failure and returns them all.
func (r *Reconciler) convergeDestinations(want *Entry, current []Destination) error {
	svc := want.Service
	have := make(map[DestKey]Destination, len(current))
	for _, d := range current {
		have[d.Key()] = d
	}
	var ops []Op
	for _, d := range want.Destinations {
		cur, ok := have[d.Key()]
		delete(have, d.Key())
		switch {
		case ok && cur.Equal(d):
		case ok:
			ops = append(ops, Op{Kind: OpUpdateDestination, Service: svc, Destination: d})
		default:
			ops = append(ops, Op{Kind: OpAddDestination, Service: svc, Destination: d})
		}
	}
	for _, d := range slices.SortedFunc(maps.Values(have), compareDests) {
		ops = append(ops, Op{Kind: OpDeleteDestination, Service: svc, Destination: d})
	}
	if len(ops) == 0 {
		return nil
	}
	var errs []error
	for i, err := range r.kernel.Apply(ops) {
		d := ops[i].Destination
		switch ops[i].Kind {
		case OpUpdateDestination:
			if errors.Is(err, syscall.ENOENT) { // deleted since it was read
				err = r.kernel.AddDestination(svc, d)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("update real server %s of %s (%s): %w", d.Key(), svc.Key(), want.Name, err))
			}
		case OpAddDestination:
			if errors.Is(err, syscall.EEXIST) { // added since it was read
				err = r.kernel.UpdateDestination(svc, d)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("add real server %s to %s (%s): %w", d.Key(), svc.Key(), want.Name, err))
			}
		case OpDeleteDestination:
			if err != nil && !isGone(err) {
				errs = append(errs, fmt.Errorf("delete real server %s of %s (%s): %w", d.Key(), svc.Key(), want.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// serviceFromKey is enough of a service to name it in a delete.
func serviceFromKey(k ServiceKey) Service {
	return Service{Family: k.Family, Protocol: k.Protocol, Address: k.Address, Port: k.Port, FWMark: k.FWMark}
}

func (r *Reconciler) setProgrammed(k ServiceKey, e *Entry) {
	r.statusMu.Lock()
	defer r.statusMu.Unlock()
	if old := r.snapshot[k]; old != nil {
		r.dests -= len(old.Destinations)
	}
	if e != nil {
		r.dests += len(e.Destinations)
	}
	if e == nil {
		delete(r.programmed, k)
		delete(r.snapshot, k)
		return
	}
	r.programmed[k] = e
	r.snapshot[k] = e
}

// Table returns what the Reconciler has programmed (or last read back) for the services it
// owns, in ipvsadm's order.
func (r *Reconciler) Table() []Entry {
	r.statusMu.Lock()
	defer r.statusMu.Unlock()
	out := make([]Entry, 0, len(r.snapshot))
	for _, e := range r.snapshot.Sorted() {
		out = append(out, *e.clone())
	}
	return out
}

// Stats returns the counters so far.
func (r *Reconciler) Stats() Stats {
	r.statusMu.Lock()
	defer r.statusMu.Unlock()
	s := r.status
	s.Services, s.Destinations = r.sizeLocked()
	return s
}

// sizeLocked is the number of services and destinations programmed; statusMu is held.
func (r *Reconciler) sizeLocked() (services, destinations int) {
	return len(r.snapshot), r.dests
}

// pass accumulates the figures of one pass.
type pass struct {
	stats PassStats
	start time.Time
	ops   OpCounts
	errs  []error
}

func (r *Reconciler) beginPass(kind string) *pass {
	return &pass{stats: PassStats{Kind: kind}, start: time.Now(), ops: r.kernel.ops}
}

func (p *pass) fail(err error) {
	p.stats.Errors++
	p.errs = append(p.errs, err)
}

// endPass saves the ownership list (pruned by deletes), logs and records the pass. It
// returns every error of the pass; the failed services are retried on the next one.
func (r *Reconciler) endPass(p *pass, err error) (PassStats, error) {
	if err != nil {
		p.fail(err)
	}
	if err := r.owned.save(); err != nil {
		p.fail(err)
	}
	p.stats.Ops = r.kernel.ops.Sub(p.ops)
	p.stats.Duration = time.Since(p.start)
	for _, e := range p.errs {
		r.log.Warn("IPVS reconcile failed; retrying on the next pass", "pass", p.stats.Kind, "err", e)
	}
	r.statusMu.Lock()
	r.status.Passes++
	r.status.Errors += p.stats.Errors
	r.status.Ops = r.kernel.ops
	r.status.LastPass = p.stats
	if len(p.errs) > 0 {
		r.status.LastError = p.errs[len(p.errs)-1].Error()
		r.status.LastErrorAt = time.Now()
	}
	services, dests := r.sizeLocked()
	r.statusMu.Unlock()
	// A pass that wrote to the kernel is worth a line at info: the table changed.
	level := slog.LevelDebug
	if p.stats.Ops.Writes() > 0 {
		level = slog.LevelInfo
	}
	r.log.Log(context.Background(), level, "IPVS pass done", "pass", p.stats.Kind, "services", p.stats.Services,
		"ops", p.stats.Ops.String(), "errors", p.stats.Errors, "duration", p.stats.Duration.Round(time.Millisecond),
		"table_services", services, "table_real_servers", dests)
	return p.stats, errors.Join(p.errs...)
}
