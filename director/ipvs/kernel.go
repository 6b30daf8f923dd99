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
