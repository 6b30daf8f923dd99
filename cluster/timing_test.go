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

func TestTransferTargetsLeaveOutIneligibleDirectors(t *testing.T) {
	st := fsm.NewState()
	var servers []raft.Server
	for _, id := range []string{"d1", "d2", "d3", "d4"} {
		d := fsm.Director{ID: id, RaftAddr: "127.0.0.1:1", APIAddr: "127.0.0.1:2"}
		if err := st.Execute(fsm.RegisterDirector{Director: d}); err != nil {
			t.Fatal(err)
		}
		servers = append(servers, raft.Server{ID: raft.ServerID(id), Suffrage: raft.Voter})
	}
	failing := map[string]bool{"d3": true}
	n := &Node{cfg: Config{NodeID: "d1", Eligible: func(id string) bool { return !failing[id] }}}
	var ids []string
	for _, s := range n.transferTargets(st, servers) {
		ids = append(ids, string(s.ID))
	}
	if !slices.Equal(ids, []string{"d2", "d4"}) {
		t.Fatalf("targets %v, want d2 and d4 (d3's checks fail, d1 leads)", ids)
	}
}
