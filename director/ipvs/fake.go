package ipvs

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"syscall"
)

// Fake is an in-memory IPVS table that behaves like the kernel where a client can tell:
// it adds the HASHED flag to the services it returns, rejects a duplicate with EEXIST, a
// missing service with ESRCH and a missing destination with ENOENT (syscall.Errno, as the
// real kernel), rejects an IPv6 netmask outside 1..128 with EINVAL, and counts operations
// by kind. It is safe for concurrent use.
type Fake struct {
	mu       sync.Mutex
	services map[ServiceKey]*fakeService
	ops      OpCounts
	failNext error // see FailNext
	batches  int
}

type fakeService struct {
	svc   Service
	dests map[DestKey]*fakeDest
	stats Counters
}

type fakeDest struct {
	dst   Destination
	stats DestinationStats
}

var (
	_ Kernel      = (*Fake)(nil)
	_ Batcher     = (*Fake)(nil)
	_ StatsReader = (*Fake)(nil)
)

// NewFake returns an empty table.
func NewFake() *Fake { return &Fake{services: map[ServiceKey]*fakeService{}} }

// Ops returns the operations counted so far.
func (f *Fake) Ops() OpCounts {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ops
}

// FailNext makes the next operation of any kind fail with err, as a kernel that refused it.
func (f *Fake) FailNext(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext = err
}

func (f *Fake) injected() error {
	err := f.failNext
	f.failNext = nil
	return err
}

// Services returns every service, in ipvsadm's order, with HASHED set as the kernel does.
func (f *Fake) Services() ([]Service, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops.ServiceDumps++
	if err := f.injected(); err != nil {
		return nil, err
	}
	out := make([]Service, 0, len(f.services))
	for _, s := range f.services {
		out = append(out, s.svc)
	}
	slices.SortFunc(out, func(a, b Service) int { return a.Key().Compare(b.Key()) })
	return out, nil
}

// Destinations returns the destinations of svc by address and port. Like the kernel's
// dump, a missing service yields an empty list, not an error.
func (f *Fake) Destinations(svc Service) ([]Destination, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops.DestinationDumps++
	if err := f.injected(); err != nil {
		return nil, err
	}
	s, ok := f.services[svc.Key()]
	if !ok {
		return nil, nil
	}
	out := make([]Destination, 0, len(s.dests))
	for _, d := range s.dests {
		out = append(out, d.dst)
	}
	slices.SortFunc(out, compareDests)
	return out, nil
}

func compareDests(a, b Destination) int {
	if c := a.Address.Compare(b.Address); c != 0 {
		return c
	}
	return int(a.Port) - int(b.Port)
}

// Apply applies ops one after the other, as the kernel does with a batch of messages.
func (f *Fake) Apply(ops []Op) []error {
	f.mu.Lock()
	f.batches++
	f.mu.Unlock()
	errs := make([]error, len(ops))
	for i, op := range ops {
		errs[i] = applyOne(f, op)
	}
	return errs
}

// Batches is the number of Apply calls so far.
func (f *Fake) Batches() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.batches
}

// AddService creates svc.
func (f *Fake) AddService(svc Service) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops.ServiceAdds++
	if err := f.check(svc); err != nil {
		return err
	}
	k := svc.Key()
	if _, ok := f.services[k]; ok {
		return fmt.Errorf("add service %s: %w", k, syscall.EEXIST)
	}
	f.services[k] = &fakeService{svc: kernelView(svc), dests: map[DestKey]*fakeDest{}}
	return nil
}

// UpdateService edits the settings of an existing service in place.
func (f *Fake) UpdateService(svc Service) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops.ServiceUpdates++
	if err := f.check(svc); err != nil {
		return err
	}
	s, ok := f.services[svc.Key()]
	if !ok {
		return fmt.Errorf("update service %s: %w", svc.Key(), syscall.ESRCH)
	}
	s.svc = kernelView(svc)
	return nil
}

// DeleteService removes svc and its destinations.
func (f *Fake) DeleteService(svc Service) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops.ServiceDeletes++
	if err := f.injected(); err != nil {
		return err
	}
	k := svc.Key()
	if _, ok := f.services[k]; !ok {
		return fmt.Errorf("delete service %s: %w", k, syscall.ESRCH)
	}
	delete(f.services, k)
	return nil
}

// AddDestination adds d to svc.
func (f *Fake) AddDestination(svc Service, d Destination) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops.DestinationAdds++
	s, err := f.serviceFor(svc)
	if err != nil {
		return fmt.Errorf("add destination %s to %s: %w", d.Key(), svc.Key(), err)
	}
	if _, ok := s.dests[d.Key()]; ok {
		return fmt.Errorf("add destination %s to %s: %w", d.Key(), svc.Key(), syscall.EEXIST)
	}
	s.dests[d.Key()] = &fakeDest{dst: d.Normalized(), stats: DestinationStats{Destination: d.Key()}}
	return nil
}

// UpdateDestination edits an existing destination of svc.
func (f *Fake) UpdateDestination(svc Service, d Destination) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops.DestinationUpdates++
	s, err := f.serviceFor(svc)
	if err != nil {
		return fmt.Errorf("update destination %s of %s: %w", d.Key(), svc.Key(), err)
	}
	fd, ok := s.dests[d.Key()]
	if !ok {
		return fmt.Errorf("update destination %s of %s: %w", d.Key(), svc.Key(), syscall.ENOENT)
	}
	fd.dst = d.Normalized()
	return nil
}

// DeleteDestination removes d from svc.
func (f *Fake) DeleteDestination(svc Service, d Destination) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops.DestinationDeletes++
	s, err := f.serviceFor(svc)
	if err != nil {
		return fmt.Errorf("delete destination %s of %s: %w", d.Key(), svc.Key(), err)
	}
	if _, ok := s.dests[d.Key()]; !ok {
		return fmt.Errorf("delete destination %s of %s: %w", d.Key(), svc.Key(), syscall.ENOENT)
	}
	delete(s.dests, d.Key())
	return nil
}

func (f *Fake) serviceFor(svc Service) (*fakeService, error) {
	if err := f.injected(); err != nil {
		return nil, err
	}
	s, ok := f.services[svc.Key()]
	if !ok {
		return nil, syscall.ESRCH
	}
	return s, nil
}

// check validates a full service specification as ip_vs_genl_parse_service and
// ip_vs_add/edit_service do.
func (f *Fake) check(svc Service) error {
	if err := f.injected(); err != nil {
		return err
	}
	switch {
	case svc.Family != FamilyIPv4 && svc.Family != FamilyIPv6:
		return fmt.Errorf("service %s: family %d: %w", svc.Key(), svc.Family, syscall.EAFNOSUPPORT)
	case svc.Scheduler == "":
		return fmt.Errorf("service %s: no scheduler: %w", svc.Key(), syscall.ENOENT)
	case svc.Family == FamilyIPv6 && (svc.Netmask < 1 || svc.Netmask > 128):
		return fmt.Errorf("service %s: IPv6 netmask %d: %w", svc.Key(), svc.Netmask, syscall.EINVAL)
	case svc.FWMark == 0 && !svc.Address.IsValid():
		return fmt.Errorf("service %s: no address: %w", svc.Key(), syscall.EINVAL)
	}
	return nil
}

// kernelView is the service as the kernel stores and reports it.
func kernelView(svc Service) Service {
	svc = svc.Normalized()
	svc.Flags |= FlagHashed
	return svc
}

// ServiceStats returns the counters of every service (zero unless set with SetStats).
func (f *Fake) ServiceStats() ([]ServiceStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]ServiceStats, 0, len(f.services))
	for _, k := range slices.SortedFunc(maps.Keys(f.services), ServiceKey.Compare) {
		out = append(out, ServiceStats{Service: k, Counters: f.services[k].stats})
	}
	return out, nil
}

// DestinationStats returns the counters of the destinations of svc.
func (f *Fake) DestinationStats(svc Service) ([]DestinationStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.services[svc.Key()]
	if !ok {
		return nil, nil
	}
	out := make([]DestinationStats, 0, len(s.dests))
	for _, d := range s.dests {
		out = append(out, d.stats)
	}
	slices.SortFunc(out, func(a, b DestinationStats) int {
		return compareDests(Destination{Address: a.Destination.Address, Port: a.Destination.Port},
			Destination{Address: b.Destination.Address, Port: b.Destination.Port})
	})
	return out, nil
}

// SetStats sets the counters the fake reports for a service and, when dst is not nil,
// for one of its destinations. It returns ESRCH or ENOENT if they do not exist.
func (f *Fake) SetStats(svc ServiceKey, c Counters, dst *DestinationStats) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.services[svc]
	if !ok {
		return fmt.Errorf("set stats of %s: %w", svc, syscall.ESRCH)
	}
	s.stats = c
	if dst != nil {
		d, ok := s.dests[dst.Destination]
		if !ok {
			return fmt.Errorf("set stats of %s in %s: %w", dst.Destination, svc, syscall.ENOENT)
		}
		d.stats = *dst
	}
	return nil
}
