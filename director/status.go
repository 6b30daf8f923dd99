package director

import (
	"errors"
	"fmt"

	"github.com/raftlvs/raftlvs/director/ipvs"
	"github.com/raftlvs/raftlvs/director/syncd"
	"github.com/raftlvs/raftlvs/director/vip"
	"github.com/raftlvs/raftlvs/fsm"
)

// Status is what this director holds in its kernel.
type Status struct {
	Interface   string         // the VIP interface
	VIPs        []HeldVIP      // the VIPs held (the leader's), by interface
	SyncDaemons []syncd.Daemon // running connection-sync daemons
	// Services are the IPVS counters of the services raftlvs programmed, when asked for.
	Services []ServiceCounters
}

// ServiceCounters are one programmed service's kernel counters and its destinations'.
type ServiceCounters struct {
	Name         string
	Counters     ipvs.Counters
	Destinations []ipvs.DestinationStats
	// Service and Programmed are the service and destinations as programmed (their
	// weights in the kernel), by address and port.
	Service    ipvs.Service
	Programmed []ipvs.Destination
}

// Status reports VIPs and sync daemons and, with counters, the IPVS counters of every
// service raftlvs programmed: one kernel dump per service, slow on a large table.
func (d *Director) Status(counters bool) Status {
	st := Status{Interface: d.cfg.VIP.Interface, VIPs: d.vips.held()}
	if d.kernel.Sync != nil {
		daemons, err := d.kernel.Sync.List()
		if err != nil {
			d.log.Warn("list sync daemons", "err", err)
		}
		st.SyncDaemons = daemons
	}
	if counters && d.kernel.Stats != nil && d.reconciler != nil {
		st.Services = d.counters()
	}
	return st
}

// counters reads the kernel counters of the services in the programmed table.
func (d *Director) counters() []ServiceCounters {
	svcStats, err := d.kernel.Stats.ServiceStats()
	if err != nil {
		d.log.Warn("read IPVS service counters", "err", err)
		return nil
	}
	byKey := make(map[ipvs.ServiceKey]ipvs.Counters, len(svcStats))
	for _, s := range svcStats {
		byKey[s.Service] = s.Counters
	}
	var out []ServiceCounters
	for _, e := range d.reconciler.Table() {
		sc := ServiceCounters{Name: e.Name, Counters: byKey[e.Service.Key()], Service: e.Service, Programmed: e.Destinations}
		dests, err := d.kernel.Stats.DestinationStats(e.Service)
		if err != nil {
			d.log.Warn("read IPVS destination counters", "service", e.Name, "err", err)
		}
		sc.Destinations = dests
		out = append(out, sc)
	}
	return out
}

// ReconcilerStats are the IPVS reconciler's counters.
func (d *Director) ReconcilerStats() ipvs.Stats { return d.reconciler.Stats() }

// VIPStats are the figures of every VIP this director has held or tried to hold.
func (d *Director) VIPStats() []vip.VIPStats { return d.vips.stats() }

// VIPInterface is the interface that carries the VIPs the cluster names no interface for.
func (d *Director) VIPInterface() string { return d.cfg.VIP.Interface }

// Connections counts the active connections of a real server in this director's IPVS
// table, so a drain can end when the last one has. Inactive entries are left out: with DR
// and TUN the director sees only one direction, and a closed connection lingers as
// FIN_WAIT or TIME_WAIT for minutes, which would make every drain last its maximum.
func (d *Director) Connections(rs fsm.RealServer) (int, error) {
	if d.kernel.Stats == nil || d.reconciler == nil {
		return 0, errors.New("count connections: no IPVS counters")
	}
	for _, e := range d.reconciler.Table() {
		if e.Name != rs.Service {
			continue
		}
		dests, err := d.kernel.Stats.DestinationStats(e.Service)
		if err != nil {
			return 0, fmt.Errorf("count connections of %s: %w", rs.Service, err)
		}
		for _, ds := range dests {
			if ds.Destination.Address == rs.Addr.Unmap() && ds.Destination.Port == rs.Port {
				return ds.ActiveConnections, nil
			}
		}
		return 0, nil // not programmed (any more): nothing to wait for
	}
	return 0, nil
}
