package metrics

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/raftlvs/raftlvs/cluster/gossip"
	"github.com/raftlvs/raftlvs/realserver"
)

type agentStatus realserver.Status

func (a agentStatus) Status() realserver.Status { return realserver.Status(a) }

type members []gossip.Member

func (m members) Members() []gossip.Member { return m }

func TestAgentMetricsTellReadinessRoundsAndThePoolByRoleAndState(t *testing.T) {
	reg := NewAgent(AgentSources{
		Agent: agentStatus{Ready: true, Rounds: 7, Unsettled: 2, LastRound: time.Unix(1700000000, 500e6), Services: 2, Resolved: 1, VIPs: 1},
		Members: members{
			{Name: "d1", State: gossip.StateAlive, Meta: gossip.Meta{Role: gossip.RoleDirector}},
			{Name: "d2", State: gossip.StateDead, Meta: gossip.Meta{Role: gossip.RoleDirector}},
			{Name: "web1", State: gossip.StateAlive, Meta: gossip.Meta{Role: gossip.RoleAgent}},
		},
	})
	want := `# HELP raftlvs_agent_ready 1 once the host is configured for every service the cluster knows and the agent announced itself in rotation; 0 again while it stops.
# TYPE raftlvs_agent_ready gauge
raftlvs_agent_ready 1
# HELP raftlvs_agent_rounds_total Rounds of the agent's loop: services resolved, the host checked and converged.
# TYPE raftlvs_agent_rounds_total counter
raftlvs_agent_rounds_total 7
# HELP raftlvs_agent_unsettled_rounds_total Rounds that left something to retry (a service not resolved, the host not configured).
# TYPE raftlvs_agent_unsettled_rounds_total counter
raftlvs_agent_unsettled_rounds_total 2
# HELP raftlvs_agent_last_round_timestamp_seconds When the agent's last round ended.
# TYPE raftlvs_agent_last_round_timestamp_seconds gauge
raftlvs_agent_last_round_timestamp_seconds 1.7000000005e+09
# HELP raftlvs_agent_services_resolved Services the cluster answered for.
# TYPE raftlvs_agent_services_resolved gauge
raftlvs_agent_services_resolved 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "raftlvs_agent_ready", "raftlvs_agent_rounds_total",
		"raftlvs_agent_unsettled_rounds_total", "raftlvs_agent_last_round_timestamp_seconds", "raftlvs_agent_services_resolved"); err != nil {
		t.Error(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "raftlvs_agent_gossip_members" {
			continue
		}
		for _, m := range f.Metric {
			var role, state string
			for _, l := range m.Label {
				if l.GetName() == "role" {
					role = l.GetValue()
				} else {
					state = l.GetValue()
				}
			}
			got[role+"/"+state] = m.Gauge.GetValue()
		}
	}
	for k, v := range map[string]float64{"director/alive": 1, "director/dead": 1, "agent/alive": 1, "agent/left": 0} {
		if got[k] != v {
			t.Errorf("gossip members %s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
	if n, _ := testutil.GatherAndCount(reg, "raftlvs_build_info"); n != 1 {
		t.Errorf("build info series: %d", n)
	}
}

func TestServeAnswersMetricsOnItsOwnPortUntilCancelled(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := NewAgent(AgentSources{Agent: agentStatus{Ready: true, Services: 1}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, reg) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "raftlvs_agent_ready 1") || !strings.Contains(string(body), `role="agent"`) {
		t.Errorf("GET /metrics: %d\n%s", resp.StatusCode, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
}
