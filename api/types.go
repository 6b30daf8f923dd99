package api

import (
	"net/netip"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// ServiceInfo is a service with its real servers, as GET /v1/services/{name} returns it.
type ServiceInfo struct {
	fsm.Service
	RealServers []fsm.RealServer `json:"real_servers"`
}

// ServiceList is the answer of GET /v1/services.
type ServiceList struct {
	Services []ServiceInfo `json:"services"`
}

// StateDump is the whole replicated state, as GET /v1/state returns it (save uses it).
type StateDump struct {
	ClusterID   string           `json:"cluster_id"`
	Version     uint64           `json:"version"`
	Services    []fsm.Service    `json:"services"`
	RealServers []fsm.RealServer `json:"real_servers"`
	Directors   []fsm.Director   `json:"directors"`
}

// StatusResponse is the answer of GET /v1/status: this node's view of Raft, the replicated
// services, and what the director reports of its data plane and of the agents.
type StatusResponse struct {
	// At is when the answering director (Node.NodeID) read what follows, by its clock.
	At        time.Time      `json:"at"`
	Node      NodeStatus     `json:"node"`
	ClusterID string         `json:"cluster_id"`
	Version   uint64         `json:"version"`
	Directors []fsm.Director `json:"directors"`
	Services  []ServiceInfo  `json:"services"`
	// DataPlane is absent on a director without a data plane (a witness).
	DataPlane *DataPlane `json:"dataplane,omitempty"`
	// Agents are the real-server agents the answering director sees in the gossip pool.
	Agents []Agent `json:"agents,omitempty"`
}

// Agent is a real-server agent as the answering director sees it in the gossip pool.
type Agent struct {
	ID       string         `json:"id"`
	Gossip   netip.AddrPort `json:"gossip"`
	State    string         `json:"state"` // alive, suspect, dead, left
	Addr     netip.Addr     `json:"addr,omitzero"`
	Services []AgentService `json:"services,omitempty"`
	Draining bool           `json:"draining,omitempty"`
	// Error says why the agent's metadata could not be read (a newer agent?).
	Error string `json:"error,omitempty"`
}

// AgentService is a service an agent announces: its name, the port it serves (0: the
// service's) and its weight.
type AgentService struct {
	Service string `json:"service"`
	Port    uint16 `json:"port,omitempty"`
	Weight  int    `json:"weight"`
}

// DataPlane is what the answering director reports of its kernel: the VIPs it holds, its
// sync daemons and, when asked for, the IPVS counters.
type DataPlane struct {
	VIPs        []VIP             `json:"vips"`
	SyncDaemons []SyncDaemon      `json:"sync_daemons"`
	Services    []ServiceCounters `json:"services,omitempty"`
}

// VIP is a virtual address this director has claimed.
type VIP struct {
	Addr      netip.Addr `json:"addr"`
	Interface string     `json:"interface"`
}

// SyncDaemon is one running IPVS connection-sync daemon.
type SyncDaemon struct {
	Role      string `json:"role"` // "master" or "backup"
	Interface string `json:"interface"`
	SyncID    int    `json:"sync_id"`
}

// ServiceCounters are the kernel's counters for one service (by name) and its destinations.
type ServiceCounters struct {
	Service     string               `json:"service"`
	Stats       Counters             `json:"stats"`
	RealServers []RealServerCounters `json:"real_servers,omitempty"`
}

// RealServerCounters are the kernel's counters for one destination.
type RealServerCounters struct {
	Addr          netip.Addr `json:"addr"`
	Port          uint16     `json:"port"`
	ActiveConns   uint32     `json:"active_conns"`
	InactiveConns uint32     `json:"inactive_conns"`
	// Weight is the weight programmed in the kernel (0 while draining), when known.
	Weight *int     `json:"weight,omitempty"`
	Stats  Counters `json:"stats"`
}

// Counters are IPVS totals and rates (per second), as ipvsadm --stats and --rate show them.
type Counters struct {
	Conns    uint64 `json:"conns"`
	InPkts   uint64 `json:"in_pkts"`
	OutPkts  uint64 `json:"out_pkts"`
	InBytes  uint64 `json:"in_bytes"`
	OutBytes uint64 `json:"out_bytes"`
	CPS      uint64 `json:"cps"`
	InPPS    uint64 `json:"in_pps"`
	OutPPS   uint64 `json:"out_pps"`
	InBPS    uint64 `json:"in_bps"`
	OutBPS   uint64 `json:"out_bps"`
}

// BatchResult is the answer of POST /v1/batch.
type BatchResult struct {
	Applied int    `json:"applied"` // commands committed, all in one log entry
	Version uint64 `json:"version"` // state version after the batch, on the node that applied it
	// A dry run (?dry_run=true) applies nothing: Checked commands would all apply to the
	// leader's state as it is now.
	DryRun  bool `json:"dry_run,omitempty"`
	Checked int  `json:"checked,omitempty"`
}

// LeaveRequest is the body of POST /v1/leave.
type LeaveRequest struct {
	ID string `json:"id"`
}

// TransferRequest is the body of POST /v1/leadership/transfer; an empty id lets Raft pick.
type TransferRequest struct {
	ID string `json:"id,omitempty"`
}

// ErrorBody is every error answer.
type ErrorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
	// Code names the error class (invalid, not_found, exists, conflict, unavailable,
	// outcome_unknown, too_large, method_not_allowed, internal) so a client can tell
	// 409 exists from 409 conflict.
	Code string `json:"code"`
}
