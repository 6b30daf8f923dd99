package daemon

import (
	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/cluster/gossip"
	"github.com/raftlvs/raftlvs/director"
	"github.com/raftlvs/raftlvs/director/ipvs"
	"github.com/raftlvs/raftlvs/director/syncd"
)

// dataPlaneStatus is the wire form of what the director holds in its kernel.
func dataPlaneStatus(st director.Status) *api.DataPlane {
	dp := &api.DataPlane{VIPs: []api.VIP{}, SyncDaemons: []api.SyncDaemon{}}
	for _, v := range st.VIPs {
		dp.VIPs = append(dp.VIPs, api.VIP{Addr: v.Addr, Interface: v.Interface})
	}
	for _, sd := range st.SyncDaemons {
		role := "backup"
		if sd.State == syncd.Master {
			role = "master"
		}
		dp.SyncDaemons = append(dp.SyncDaemons, api.SyncDaemon{Role: role, Interface: sd.Interface, SyncID: int(sd.SyncID)})
	}
	for _, sc := range st.Services {
		out := api.ServiceCounters{Service: sc.Name, Stats: apiCounters(sc.Counters)}
		weights := make(map[ipvs.DestKey]int, len(sc.Programmed))
		for _, d := range sc.Programmed {
			weights[d.Key()] = d.Weight
		}
		for _, ds := range sc.Destinations {
			rc := api.RealServerCounters{
				Addr: ds.Destination.Address, Port: ds.Destination.Port,
				ActiveConns: uint32(ds.ActiveConnections), InactiveConns: uint32(ds.InactiveConnections),
				Stats: apiCounters(ds.Counters),
			}
			if w, ok := weights[ds.Destination]; ok {
				rc.Weight = &w
			}
			out.RealServers = append(out.RealServers, rc)
		}
		dp.Services = append(dp.Services, out)
	}
	return dp
}

func apiCounters(c ipvs.Counters) api.Counters {
	return api.Counters{
		Conns: c.Connections, InPkts: c.PacketsIn, OutPkts: c.PacketsOut, InBytes: c.BytesIn, OutBytes: c.BytesOut,
		CPS: c.CPS, InPPS: c.PPSIn, OutPPS: c.PPSOut, InBPS: c.BPSIn, OutBPS: c.BPSOut,
	}
}

// agentsOf lists the agents of the pool as the status endpoint reports them.
func agentsOf(pool *gossip.Pool) []api.Agent {
	out := []api.Agent{}
	for _, m := range pool.Members() {
		if m.MetaErr == nil && m.Meta.Role != gossip.RoleAgent {
			continue
		}
		a := api.Agent{ID: m.Name, Gossip: m.Addr, State: m.StateName(), Addr: m.Meta.Addr, Draining: m.Meta.Draining}
		for _, sp := range m.Meta.Services {
			a.Services = append(a.Services, api.AgentService{Service: sp.Service, Port: sp.Port, Weight: sp.Weight})
		}
		if m.MetaErr != nil {
			a.Error = m.MetaErr.Error()
		}
		out = append(out, a)
	}
	return out
}
