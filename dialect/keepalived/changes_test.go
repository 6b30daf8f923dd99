package keepalived

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/raftlvs/raftlvs/fsm"
	"github.com/raftlvs/raftlvs/fsm/plan"
)

func steps(c *plan.Changes) string {
	var out []string
	for _, s := range c.Steps {
		out = append(out, s.String())
	}
	return strings.Join(out, "\n")
}

func TestChangesAgainstAnEmptyClusterCreateEverything(t *testing.T) {
	plan := mustTranslate(t, vs("    real_server 10.0.0.1 80 {\n    }\n    real_server 10.0.0.2 80 {\n    }"))
	c := plan.Against(nil, nil)
	want := "create service tcp-192.0.2.10-80 (TCP 192.0.2.10:80)\ncreate real server 10.0.0.1:80 of tcp-192.0.2.10-80\ncreate real server 10.0.0.2:80 of tcp-192.0.2.10-80"
	if got := steps(c); got != want {
		t.Errorf("steps\n%s\nwant\n%s", got, want)
	}
}

func TestChangesAgainstACluster(t *testing.T) {
	// The cluster: the service under another name with another scheduler, one real server
	// the file changes (and which is draining), one it lacks, one an agent registered, and
	// a service the file does not mention.
	st := fsm.NewState()
	cmds := []fsm.Command{
		fsm.AddService{Service: fsm.Service{Name: "web", Protocol: fsm.TCP, VIP: mustAddr("192.0.2.10"), Port: 80, Scheduler: "wlc"}},
		fsm.AddRealServer{RealServer: fsm.RealServer{Service: "web", Addr: mustAddr("10.0.0.1"), Port: 80, Weight: 5, Admin: fsm.Draining}},
		fsm.AddRealServer{RealServer: fsm.RealServer{Service: "web", Addr: mustAddr("10.0.0.9"), Port: 80, Weight: 1}},
		fsm.UpsertAgentRS{RealServer: fsm.RealServer{Service: "web", Addr: mustAddr("10.0.0.7"), Port: 80, Weight: 1, Origin: fsm.AgentOrigin("a7")}},
		fsm.AddService{Service: fsm.Service{Name: "other", Protocol: fsm.UDP, VIP: mustAddr("192.0.2.11"), Port: 53}},
	}
	for _, c := range cmds {
		p, err := st.Prepare(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Execute(p); err != nil {
			t.Fatal(err)
		}
	}
	plan := mustTranslate(t, vs("    real_server 10.0.0.1 80 {\n        weight 2\n    }\n    real_server 10.0.0.2 80 {\n    }\n    real_server 10.0.0.7 80 {\n    }"))
	c := plan.Against(st.Services(), st.AllRealServers())
	want := strings.Join([]string{
		"remove real server 10.0.0.9:80 of web",
		"change service web: [scheduler]",
		"change real server 10.0.0.1:80 of web: [weight]",
		"create real server 10.0.0.2:80 of web",
	}, "\n")
	if got := steps(c); got != want {
		t.Errorf("steps\n%s\nwant\n%s", got, want)
	}
	if fmt.Sprint(c.Untouched) != "[other]" || len(c.AgentServers) != 1 {
		t.Errorf("untouched %v, agents' %v", c.Untouched, c.AgentServers)
	}
	// The drain goes on.
	for _, s := range c.Steps {
		if e, ok := s.Command.(fsm.EditRealServer); ok && e.RealServer.Admin != fsm.Draining {
			t.Errorf("the edit sets admin %s", e.RealServer.Admin)
		}
	}
	// And the steps apply, as one batch.
	p, err := st.Prepare(fsm.Batch{Commands: c.Commands()})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Execute(p); err != nil {
		t.Fatal(err)
	}
	if again := plan.Against(st.Services(), st.AllRealServers()); len(again.Steps) != 0 || again.UnchangedServices != 1 || again.UnchangedServers != 2 {
		t.Errorf("after applying, still %q (unchanged %d services, %d real servers)", steps(again), again.UnchangedServices, again.UnchangedServers)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
