package ipvs

import (
	"context"
	"log/slog"
)

// countingKernel counts and logs every kernel operation of the Reconciler. It is used by
// the pass goroutine only.
type countingKernel struct {
	k   Kernel
	log *slog.Logger
	ops OpCounts
}

func (c *countingKernel) Services() ([]Service, error) {
	c.ops.ServiceDumps++
	s, err := c.k.Services()
	c.debug("ipvs dump services", "services", len(s), "err", err)
	return s, err
}

func (c *countingKernel) Destinations(svc Service) ([]Destination, error) {
	c.ops.DestinationDumps++
	d, err := c.k.Destinations(svc)
	c.debug("ipvs dump real servers", "service", svc.Key(), "real_servers", len(d), "err", err)
	return d, err
}

func (c *countingKernel) AddService(svc Service) error {
	c.ops.ServiceAdds++
	err := c.k.AddService(svc)
	c.logService("ipvs add service", svc, err)
	return err
}

func (c *countingKernel) UpdateService(svc Service) error {
	c.ops.ServiceUpdates++
	err := c.k.UpdateService(svc)
	c.logService("ipvs update service", svc, err)
	return err
}

func (c *countingKernel) DeleteService(svc Service) error {
	c.ops.ServiceDeletes++
	err := c.k.DeleteService(svc)
	c.debug("ipvs delete service", "service", svc.Key(), "err", err)
	return err
}

func (c *countingKernel) AddDestination(svc Service, d Destination) error {
	c.ops.DestinationAdds++
	err := c.k.AddDestination(svc, d)
	c.logDestination("ipvs add real server", svc, d, err)
	return err
}

func (c *countingKernel) UpdateDestination(svc Service, d Destination) error {
	c.ops.DestinationUpdates++
	err := c.k.UpdateDestination(svc, d)
	c.logDestination("ipvs update real server", svc, d, err)
	return err
}

func (c *countingKernel) DeleteDestination(svc Service, d Destination) error {
	c.ops.DestinationDeletes++
	err := c.k.DeleteDestination(svc, d)
	c.debug("ipvs delete real server", "service", svc.Key(), "real_server", d.Key(), "err", err)
	return err
}

// Apply applies ops as one batch when the kernel is a Batcher, one call at a time
// otherwise, and counts each op as the single call would be counted.
func (c *countingKernel) Apply(ops []Op) []error {
	var errs []error
	if b, ok := c.k.(Batcher); ok {
		errs = b.Apply(ops)
	} else {
		errs = make([]error, len(ops))
		for i, op := range ops {
			errs[i] = applyOne(c.k, op)
		}
	}
	debug := c.log.Enabled(context.Background(), slog.LevelDebug)
	for i, op := range ops {
		switch op.Kind {
		case OpAddService:
			c.ops.ServiceAdds++
		case OpUpdateService:
			c.ops.ServiceUpdates++
		case OpDeleteService:
			c.ops.ServiceDeletes++
		case OpAddDestination:
			c.ops.DestinationAdds++
		case OpUpdateDestination:
			c.ops.DestinationUpdates++
		case OpDeleteDestination:
			c.ops.DestinationDeletes++
		}
		switch {
		case !debug:
		case op.Kind == OpAddService || op.Kind == OpUpdateService || op.Kind == OpDeleteService:
			c.log.Debug("ipvs "+op.Kind.String(), "service", op.Service.Key(), "err", errs[i])
		default:
			c.log.Debug("ipvs "+op.Kind.String(), "service", op.Service.Key(), "real_server", op.Destination.Key(), "err", errs[i])
		}
	}
	return errs
}

func (c *countingKernel) logService(msg string, svc Service, err error) {
	c.debug(msg, "service", svc.Key(), "scheduler", svc.Scheduler, "flags", svc.Flags,
		"timeout", svc.Timeout, "netmask", svc.Netmask, "pe", svc.PEName, "err", err)
}

func (c *countingKernel) logDestination(msg string, svc Service, d Destination, err error) {
	c.debug(msg, "service", svc.Key(), "real_server", d.Key(), "weight", d.Weight,
		"forwarding", d.Forwarding, "upper", d.UpperThreshold, "lower", d.LowerThreshold, "err", err)
}

// debug logs only when enabled: a 10,000-service pass must not pay for attributes nobody reads.
func (c *countingKernel) debug(msg string, args ...any) {
	if c.log.Enabled(context.Background(), slog.LevelDebug) {
		c.log.Debug(msg, args...)
	}
}
