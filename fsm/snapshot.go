package fsm

import (
	"encoding/json"
	"fmt"
	"io"
)

// snapshotVersion is the format of a snapshot; a node refuses a format it does not know.
const snapshotVersion = 1

type snapshot struct {
	Format      int          `json:"format"`
	ClusterID   string       `json:"cluster_id"`
	Version     uint64       `json:"version"`
	Services    []Service    `json:"services"`
	RealServers []RealServer `json:"real_servers"`
	Directors   []Director   `json:"directors"`
	VIPs        []VIP        `json:"vips,omitempty"` // absent from snapshots older than declared VIPs
}

// WriteSnapshot writes the whole state. Take it from a Clone when the state may change
// meanwhile (Raft persists snapshots while it goes on applying).
func (s *State) WriteSnapshot(w io.Writer) error {
	snap := snapshot{
		Format:      snapshotVersion,
		ClusterID:   s.clusterID,
		Version:     s.version,
		Services:    s.Services(),
		RealServers: s.AllRealServers(),
		Directors:   s.Directors(),
		VIPs:        s.DeclaredVIPs(),
	}
	if err := json.NewEncoder(w).Encode(snap); err != nil {
		return fmt.Errorf("write state snapshot: %w", err)
	}
	return nil
}

// ReadSnapshot builds a state from a snapshot, checking every entry as a command would.
func ReadSnapshot(r io.Reader) (*State, error) {
	var snap snapshot
	if err := json.NewDecoder(r).Decode(&snap); err != nil {
		return nil, fmt.Errorf("read state snapshot: %w", err)
	}
	if snap.Format != snapshotVersion {
		return nil, fmt.Errorf("state snapshot format %d: %w", snap.Format, ErrUnknownCommand)
	}
	s := NewState()
	s.clusterID = snap.ClusterID
	for _, svc := range snap.Services {
		if err := (AddService{Service: svc}).check(s); err != nil {
			return nil, fmt.Errorf("state snapshot service %s: %w", svc.Name, err)
		}
		putService(s, svc.Clone())
	}
	for _, rs := range snap.RealServers {
		if err := (AddRealServer{RealServer: rs}).check(s); err != nil {
			return nil, fmt.Errorf("state snapshot real server %s %s:%d: %w", rs.Service, rs.Addr, rs.Port, err)
		}
		putServer(s, rs)
	}
	for _, d := range snap.Directors {
		if err := (RegisterDirector{Director: d}).check(s); err != nil {
			return nil, fmt.Errorf("state snapshot director %s: %w", d.ID, err)
		}
		s.directors[d.ID] = d
	}
	for _, v := range snap.VIPs {
		if err := (AddVIP{VIP: v}).check(s); err != nil {
			return nil, fmt.Errorf("state snapshot VIP %s: %w", v.Prefix, err)
		}
		s.vips[v.Addr()] = v
	}
	s.version = snap.Version
	return s, nil
}
