package ipvs

import (
	"errors"
	"fmt"
	"syscall"
)

// ErrNoIPVS means the kernel (or the network namespace) has no IPVS generic-netlink
// family: the ip_vs module is not loaded and cannot be. director/syncd wraps it too.
var ErrNoIPVS = errors.New("no IPVS in this kernel (generic netlink family \"IPVS\" not found; load the ip_vs module)")

// Kernel is what the Reconciler needs from the kernel's IPVS table. The kernel reports
// errors as syscall.Errno: EEXIST for an object that exists, ESRCH for a missing service,
// ENOENT for a missing destination.
type Kernel interface {
	// Services dumps every virtual service in one request.
	Services() ([]Service, error)
	// Destinations dumps the destinations of one service.
	Destinations(svc Service) ([]Destination, error)
	AddService(svc Service) error
	UpdateService(svc Service) error
	DeleteService(svc Service) error
	AddDestination(svc Service, d Destination) error
	UpdateDestination(svc Service, d Destination) error
	DeleteDestination(svc Service, d Destination) error
}

// OpKind is a kind of write to the IPVS table.
type OpKind uint8

// The writes a Batcher applies.
const (
	OpAddService OpKind = iota + 1
	OpUpdateService
	OpDeleteService
	OpAddDestination
	OpUpdateDestination
	OpDeleteDestination
)

func (k OpKind) String() string {
	switch k {
	case OpAddService:
		return "add service"
	case OpUpdateService:
		return "update service"
	case OpDeleteService:
		return "delete service"
	case OpAddDestination:
		return "add real server"
	case OpUpdateDestination:
		return "update real server"
	case OpDeleteDestination:
		return "delete real server"
	}
	return fmt.Sprintf("op(%d)", uint8(k))
}

// Op is one write; Destination is unused by the service kinds.
type Op struct {
	Kind        OpKind
	Service     Service
	Destination Destination
}

// Batcher is a Kernel that applies many writes at once (Linux: many netlink messages in
// one system call, where ipvsadm and moby/ipvs make a round trip per write). Apply applies
// ops in order; a failed op does not stop the ones after it, exactly as if each had been
// a single call. It returns one error per op, nil for those that succeeded.
type Batcher interface {
	Apply(ops []Op) []error
}

// applyOne is op as a single Kernel call.
func applyOne(k Kernel, op Op) error {
	switch op.Kind {
	case OpAddService:
		return k.AddService(op.Service)
	case OpUpdateService:
		return k.UpdateService(op.Service)
	case OpDeleteService:
		return k.DeleteService(op.Service)
	case OpAddDestination:
		return k.AddDestination(op.Service, op.Destination)
	case OpUpdateDestination:
		return k.UpdateDestination(op.Service, op.Destination)
	case OpDeleteDestination:
		return k.DeleteDestination(op.Service, op.Destination)
	}
	return fmt.Errorf("ipvs: unknown %s", op.Kind)
}

// StatsReader reads the counters and rates `ipvsadm -Ln --stats` and `--rate` show.
// Both Linux and Fake implement it.
type StatsReader interface {
	ServiceStats() ([]ServiceStats, error)
	DestinationStats(svc Service) ([]DestinationStats, error)
}

// Counters are the kernel's per-object counters (since creation) and rate estimates
// (per second, over the kernel's 2 s estimator).
type Counters struct {
	Connections uint64
	PacketsIn   uint64
	PacketsOut  uint64
	BytesIn     uint64
	BytesOut    uint64
	CPS         uint64
	PPSIn       uint64
	PPSOut      uint64
	BPSIn       uint64
	BPSOut      uint64
}

// ServiceStats are the counters of one virtual service.
type ServiceStats struct {
	Service ServiceKey
	Counters
}

// DestinationStats are the counters of one destination.
type DestinationStats struct {
	Destination         DestKey
	ActiveConnections   int
	InactiveConnections int
	Counters
}

// isGone reports whether err says the object is not in the kernel: ESRCH for a service,
// ENOENT for a destination.
func isGone(err error) bool {
	return errors.Is(err, syscall.ESRCH) || errors.Is(err, syscall.ENOENT)
}

// OpCounts counts kernel operations by kind.
type OpCounts struct {
	ServiceDumps       int
	DestinationDumps   int
	ServiceAdds        int
	ServiceUpdates     int
	ServiceDeletes     int
	DestinationAdds    int
	DestinationUpdates int
	DestinationDeletes int
}

// Writes is the number of operations that changed (or tried to change) the table.
func (c OpCounts) Writes() int {
	return c.ServiceAdds + c.ServiceUpdates + c.ServiceDeletes +
		c.DestinationAdds + c.DestinationUpdates + c.DestinationDeletes
}

// Reads is the number of dumps.
func (c OpCounts) Reads() int { return c.ServiceDumps + c.DestinationDumps }

// Total is every operation.
func (c OpCounts) Total() int { return c.Reads() + c.Writes() }

// Sub returns c - o, to count the operations of one pass.
func (c OpCounts) Sub(o OpCounts) OpCounts {
	return OpCounts{
		ServiceDumps:       c.ServiceDumps - o.ServiceDumps,
		DestinationDumps:   c.DestinationDumps - o.DestinationDumps,
		ServiceAdds:        c.ServiceAdds - o.ServiceAdds,
		ServiceUpdates:     c.ServiceUpdates - o.ServiceUpdates,
		ServiceDeletes:     c.ServiceDeletes - o.ServiceDeletes,
		DestinationAdds:    c.DestinationAdds - o.DestinationAdds,
		DestinationUpdates: c.DestinationUpdates - o.DestinationUpdates,
		DestinationDeletes: c.DestinationDeletes - o.DestinationDeletes,
	}
}

func (c OpCounts) String() string {
	return fmt.Sprintf("dumps svc=%d dst=%d; svc add=%d upd=%d del=%d; dst add=%d upd=%d del=%d",
		c.ServiceDumps, c.DestinationDumps, c.ServiceAdds, c.ServiceUpdates, c.ServiceDeletes,
		c.DestinationAdds, c.DestinationUpdates, c.DestinationDeletes)
}
