package director

import (
	"errors"
	"fmt"

	"github.com/raftlvs/raftlvs/cluster/api"
	"github.com/raftlvs/raftlvs/director/ipvs"
	"github.com/raftlvs/raftlvs/director/syncd"
	"github.com/raftlvs/raftlvs/fsm"
)

// DataPlane reports what this director holds in its kernel: VIPs, sync daemons and, with
// counters, the IPVS counters of the services raftlvs programmed (the API's status hook).
func (d *Director) DataPlane(counters bool) *api.DataPlane {
	dp := &api.DataPlane{VIPs: []api.VIP{}, SyncDaemons: []api.SyncDaemon{}}
	for _, a := range d.vips.Held() {
		dp.VIPs = append(dp.VIPs, api.VIP{Addr: a, Interface: d.cfg.VIP.Interface})
	}
	if d.kernel.Sync != nil {
		daemons, err := d.kernel.Sync.List()
		if err != nil {
			d.log.Warn("list sync daemons", "err", err)
		}
		for _, sd := range daemons {
			role := "backup"
			if sd.State == syncd.Master {
				role = "master"
			}
			dp.SyncDaemons = append(dp.SyncDaemons, api.SyncDaemon{Role: role, Interface: sd.Interface, SyncID: int(sd.SyncID)})
		}
	}
	if counters && d.kernel.Stats != nil {
		dp.Services = d.counters()
	}
	return dp
}

// counters reads the kernel counters of the services in the programmed table.
func (d *Director) counters() []api.ServiceCounters {
	svcStats, err := d.kernel.Stats.ServiceStats()
	if err != nil {
		d.log.Warn("read IPVS service counters", "err", err)
		return nil
	}
	byKey := make(map[ipvs.ServiceKey]ipvs.Counters, len(svcStats))
	for _, s := range svcStats {
		byKey[s.Service] = s.Counters
	}
	var out []api.ServiceCounters
	for _, e := range d.reconciler.Table() {
		sc := api.ServiceCounters{Service: e.Name, Stats: apiCounters(byKey[e.Service.Key()])}
		dests, err := d.kernel.Stats.DestinationStats(e.Service)
		if err != nil {
			d.log.Warn("read IPVS destination counters", "service", e.Name, "err", err)
		}
		for _, ds := range dests {
			sc.RealServers = append(sc.RealServers, api.RealServerCounters{
				Addr: ds.Destination.Address, Port: ds.Destination.Port,
				ActiveConns: uint32(ds.ActiveConnections), InactiveConns: uint32(ds.InactiveConnections),
				Stats: apiCounters(ds.Counters),
			})
		}
		out = append(out, sc)
	}
	return out
}

func apiCounters(c ipvs.Counters) api.Counters {
	return api.Counters{
		Conns: c.Connections, InPkts: c.PacketsIn, OutPkts: c.PacketsOut, InBytes: c.BytesIn, OutBytes: c.BytesOut,
		CPS: c.CPS, InPPS: c.PPSIn, OutPPS: c.PPSOut, InBPS: c.BPSIn, OutBPS: c.BPSOut,
	}
}

// Connections counts the active connections of a real server in this director's IPVS
// table, so a drain can end when the last one has. Inactive entries are left out: with DR
// and TUN the director sees only one direction, and a closed connection lingers as
// FIN_WAIT or TIME_WAIT for minutes, which would make every drain last its maximum.
func (d *Director) Connections(rs fsm.RealServer) (int, error) {
	if d.kernel.Stats == nil {
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
