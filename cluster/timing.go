package cluster

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Timing is the part of Config that decides how fast a failover is and how easily a
// pause is taken for a crash.
type Timing struct {
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
}

// TimingProfile is a named Timing with the trade-off it makes (DESIGN.md, Timings, has
// the measurements).
type TimingProfile struct {
	Name   string
	Timing Timing
	Use    string
}

// TimingProfiles are the profiles --raft-timing takes, fastest last.
var TimingProfiles = []TimingProfile{
	{"relaxed", Timing{time.Second, time.Second, 500 * time.Millisecond},
		"raft's own defaults: VMs that migrate, shared or network disks, busy hosts"},
	{"default", Timing{DefaultHeartbeatTimeout, DefaultElectionTimeout, DefaultLeaderLeaseTimeout},
		"a LAN trio: a crash moves the VIPs in about 0.6-0.9 s, and a stall under 150 ms is no crash"},
	{"fast", Timing{100 * time.Millisecond, 100 * time.Millisecond, 50 * time.Millisecond},
		"a dedicated network (or VLAN) and local SSDs: a crash moves the VIPs in about 0.15-0.3 s, but an fsync or GC stall over 50 ms costs an election"},
}

// ProfileTiming returns the Timing of a named profile.
func ProfileTiming(name string) (Timing, error) {
	i := slices.IndexFunc(TimingProfiles, func(p TimingProfile) bool { return p.Name == name })
	if i < 0 {
		return Timing{}, fmt.Errorf("%w: timing profile %q: want one of %s", ErrBadConfig, name, strings.Join(ProfileNames(), ", "))
	}
	return TimingProfiles[i].Timing, nil
}

// ProfileNames lists the profiles by name.
func ProfileNames() []string {
	var names []string
	for _, p := range TimingProfiles {
		names = append(names, p.Name)
	}
	return names
}
