package cluster

import (
	"errors"
	"slices"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/raftlvs/raftlvs/fsm"
)

func TestTimingProfilesAreValidConfigs(t *testing.T) {
	for _, p := range TimingProfiles {
		t.Run(p.Name, func(t *testing.T) {
			tm, err := ProfileTiming(p.Name)
			if err != nil {
				t.Fatal(err)
			}
			c := Config{NodeID: "d1", DataDir: t.TempDir(), RaftBind: "127.0.0.1:0", APIAddr: "127.0.0.1:1",
				HeartbeatTimeout: tm.HeartbeatTimeout, ElectionTimeout: tm.ElectionTimeout, LeaderLeaseTimeout: tm.LeaderLeaseTimeout}
			if err := c.withDefaults().validate(); err != nil {
				t.Fatalf("profile %s does not validate: %v", p.Name, err)
			}
		})
	}
	if _, err := ProfileTiming("ludicrous"); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("unknown profile: %v, want ErrBadConfig", err)
	}
	if tm, _ := ProfileTiming("default"); tm != (Timing{DefaultHeartbeatTimeout, DefaultElectionTimeout, DefaultLeaderLeaseTimeout}) {
		t.Fatalf("the default profile is %+v, not the defaults", tm)
	}
}

func TestTransferTargetsAreAnsweringCaughtUpEligibleDirectorsMostCaughtUpFirst(t *testing.T) {
	st := fsm.NewState()
	var servers []raft.Server
	for _, id := range []string{"d1", "d2", "d3", "d4", "d5", "d6", "w7"} {
		d := fsm.Director{ID: id, RaftAddr: "127.0.0.1:1", APIAddr: "127.0.0.1:2", Witness: id == "w7"}
		if err := st.Execute(fsm.RegisterDirector{Director: d}); err != nil {
			t.Fatal(err)
		}
		servers = append(servers, raft.Server{ID: raft.ServerID(id), Suffrage: raft.Voter})
	}
	servers = append(servers, raft.Server{ID: "ghost", Suffrage: raft.Voter}) // no director entry
	const last = 1000
	answers := map[raft.ServerID]uint64{
		"d2": last - 10, "d3": last, "d4": last - maxTransferLag - 1, "d6": last, "w7": last, "ghost": last,
	} // d5 never answered
	failing := map[string]bool{"d6": true}
	got := pickTargets(st, servers, "d1", last, func(id string) bool { return !failing[id] }, func(id raft.ServerID) (uint64, bool) {
		l, ok := answers[id]
		return l, ok
	})
	var ids []string
	for _, s := range got {
		ids = append(ids, string(s.ID))
	}
	// d1 leads; d4 is too far behind, d5 does not answer, d6's checks fail, w7 is a
	// witness, the ghost is no director; d3 is caught up, d2 ten entries behind.
	if !slices.Equal(ids, []string{"d3", "d2"}) {
		t.Fatalf("targets %v, want d3 then d2", ids)
	}
}
