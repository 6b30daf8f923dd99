package healthd

import (
	"cmp"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

func webService(check *fsm.HealthCheck, failOpen int) fsm.Command {
	return fsm.AddService{Service: fsm.Service{Name: "web", Protocol: fsm.TCP, VIP: netip.MustParseAddr("192.0.2.10"), Port: 80,
		Family: fsm.IPv4, HealthCheck: check, FailOpenPercent: failOpen}}
}

// aggCase describes one aggregation: the tables write one letter per real server of the
// web service, in order: U up, D down, ? unknown, - no entry (in a view); . no change (in
// the result).
type aggCase struct {
	name      string
	directors string // space-separated ids; a "w:" prefix marks a witness
	leader    string // default d1
	unchecked bool   // the service has no health check
	failOpen  int
	health    string            // the committed health; default all unknown
	views     map[string]string // director → its verdicts
	stale     []string          // directors whose views are too old
	agents    string            // agents' verdicts, as a view
	want      string
	warnings  []WarningKind
}

var verdictOf = map[byte]fsm.Health{'U': fsm.HealthUp, 'D': fsm.HealthDown, '?': fsm.HealthUnknown}

func (c aggCase) input(t *testing.T) Aggregation {
	t.Helper()
	n := len(c.want)
	var cmds []fsm.Command
	for _, id := range strings.Fields(c.directors) {
		name, witness := strings.CutPrefix(id, "w:")
		cmds = append(cmds, director(name, witness))
	}
	var check *fsm.HealthCheck
	if !c.unchecked {
		check = &fsm.HealthCheck{Type: fsm.CheckTCP}
	}
	cmds = append(cmds, webService(check, c.failOpen))
	for i := 1; i <= n; i++ {
		k := rsKey(i)
		cmds = append(cmds, fsm.AddRealServer{RealServer: fsm.RealServer{Service: k.Service, Addr: k.Addr, Port: k.Port, Weight: 1}})
		if i <= len(c.health) && c.health[i-1] != '?' {
			cmds = append(cmds, fsm.SetHealth{Key: k, Health: verdictOf[c.health[i-1]], Reason: "before", Since: t0.Add(-time.Hour)})
		}
	}
	in := Aggregation{State: prepared(t, cmds...), Leader: cmp.Or(c.leader, "d1"), Now: t0}
	for _, id := range slices.Sorted(maps.Keys(c.views)) {
		v := View{Director: id, At: t0.Add(-time.Second)}
		if slices.Contains(c.stale, id) {
			v.At = t0.Add(-time.Minute)
		}
		for i, l := range []byte(c.views[id]) {
			if l != '-' {
				v.Servers = append(v.Servers, ServerView{RSKey: rsKey(i + 1), Health: verdictOf[l], Reason: map[byte]string{'U': "connected", 'D': "connect: connection refused"}[l]})
			}
		}
		in.Views = append(in.Views, v)
	}
	for i, l := range []byte(c.agents) {
		if l != '-' {
			in.Agents = append(in.Agents, AgentVerdict{Key: rsKey(i + 1), Health: verdictOf[l], Reason: "local check", At: t0})
		}
	}
	return in
}

// outcome writes a decision as the tables do.
func outcome(d Decision, n int) string {
	got := []byte(strings.Repeat(".", n))
	for _, u := range d.Command.Updates {
		i := int(u.Key.Addr.As4()[3]) - 1
		got[i] = letter(u.Health)[0]
	}
	return string(got)
}

func kinds(ws []Warning) []WarningKind {
	var out []WarningKind
	for _, w := range ws {
		out = append(out, w.Kind)
	}
	return out
}

func TestAggregate(t *testing.T) {
	three := "d1 d2 d3"
	tests := []aggCase{
		// Majorities.
		{name: "a majority of three takes a server down", directors: three, views: map[string]string{"d1": "D", "d2": "D", "d3": "U"}, want: "D"},
		{name: "a minority of three does not", directors: three, health: "U", views: map[string]string{"d1": "D", "d2": "U", "d3": "U"}, want: "."},
		{name: "a tie of two changes nothing", directors: "d1 d2", views: map[string]string{"d1": "D", "d2": "U"}, want: "."},
		{name: "both of two take a server down", directors: "d1 d2", views: map[string]string{"d1": "D", "d2": "D"}, want: "D"},
		{name: "a majority brings a down server back", directors: three, health: "D", views: map[string]string{"d1": "U", "d2": "U", "d3": "D"}, want: "U"},
		{name: "a first up is committed", directors: three, views: map[string]string{"d1": "U", "d2": "U", "d3": "U"}, want: "U"},
		{name: "what is already so is no transition", directors: three, health: "DU", views: map[string]string{"d1": "DU", "d2": "DU", "d3": "DU"}, want: ".."},
		{name: "an unknown verdict abstains", directors: three, views: map[string]string{"d1": "D", "d2": "D", "d3": "?"}, want: "D"},
		{name: "a director without the server abstains", directors: three, views: map[string]string{"d1": "D", "d2": "-", "d3": "D"}, want: "D"},

		// Who counts.
		{name: "a stale view does not count", directors: three, views: map[string]string{"d1": "D", "d2": "D", "d3": "U"}, stale: []string{"d2"}, want: "."},
		{name: "a witness's view does not count", directors: "d1 d2 w:w3", views: map[string]string{"d1": "D", "d2": "U", "w3": "D"}, want: "."},
		{name: "an unlisted director's view does not count", directors: "d1 d2", views: map[string]string{"d1": "D", "d2": "U", "d9": "D"}, want: "."},

		// Lone views.
		{name: "a follower's lone view never takes a server down", directors: three, views: map[string]string{"d2": "D", "d3": "-"}, stale: []string{"d1"}, want: "."},
		{name: "a follower's lone view brings a server back", directors: three, health: "D", views: map[string]string{"d2": "U"}, want: "U"},
		{name: "the leader's lone view takes a few down", directors: three, views: map[string]string{"d1": "DDU", "d2": "---"}, want: "DDU"},
		{name: "the leader alone seeing many down takes none down", directors: three, views: map[string]string{"d1": "DDDDU", "d2": "-----"}, want: "....U", warnings: []WarningKind{WarnLoneDirector}},
		{name: "the leader alone against the others takes none down and is warned", directors: three, health: "UUUU", views: map[string]string{"d1": "DDDD", "d2": "UUUU", "d3": "UUUU"}, want: "....", warnings: []WarningKind{WarnLoneDirector}},
		{name: "a few lone downs of the leader raise no warning", directors: three, health: "UUU", views: map[string]string{"d1": "DDD", "d2": "UUU", "d3": "UUU"}, want: "..."},
		{name: "a corroborated down goes through beside the leader's lone ones", directors: three, health: "UUUUU", views: map[string]string{"d1": "DDDDD", "d2": "UUUUD", "d3": "UUUUU"}, want: "....D", warnings: []WarningKind{WarnLoneDirector}},
		{name: "a follower alone seeing many down is warned of", directors: three, health: "UUUU", views: map[string]string{"d1": "UUUU", "d2": "DDDD", "d3": "UUUU"}, want: "....", warnings: []WarningKind{WarnLoneDirector}},
		{name: "the only director decides alone", directors: "d1 w:w2", views: map[string]string{"d1": "DDDDD"}, want: "DDDDD"},
		{name: "the only director decides even as a follower", directors: "d1 w:w2", leader: "w2", views: map[string]string{"d1": "D"}, want: "D"},
		{name: "servers the leader alone holds down count toward its limit", directors: three, health: "DDD", views: map[string]string{"d1": "DDDD", "d2": "----"}, want: "....", warnings: []WarningKind{WarnLoneDirector}},

		// Agents.
		{name: "an agent's down takes a server down whatever the directors see", directors: three, agents: "D", views: map[string]string{"d1": "U", "d2": "U", "d3": "U"}, want: "D"},
		{name: "an agent's up leaves a directors' majority down", directors: three, agents: "U", views: map[string]string{"d1": "D", "d2": "D", "d3": "U"}, want: "D"},
		{name: "an agent's down is no lone view of a director", directors: three, agents: "DDDD", views: map[string]string{"d1": "DDDD", "d2": "UUUU", "d3": "UUUU"}, want: "DDDD"},
		{name: "an agent's up brings back a server no director checks", directors: three, unchecked: true, health: "D", agents: "U", want: "U"},
		{name: "an agent's down takes down a server no director checks", directors: three, unchecked: true, agents: "D", want: "D"},

		// No check.
		{name: "a server with no check becomes unknown", directors: three, unchecked: true, health: "DU?", want: "??."},

		// Fail-open.
		{name: "fail-open holds downs beyond its share", directors: three, failOpen: 50, health: "UUUU", views: map[string]string{"d1": "DDDU", "d2": "DDDU", "d3": "DDDU"}, want: "....", warnings: []WarningKind{WarnFailOpen}},
		{name: "fail-open lets downs within its share through", directors: three, failOpen: 50, health: "UUUU", views: map[string]string{"d1": "DDUU", "d2": "DDUU", "d3": "DDUU"}, want: "DD.."},
		{name: "fail-open counts servers already down", directors: three, failOpen: 50, health: "DUUU", views: map[string]string{"d1": "DDDU", "d2": "DDDU", "d3": "DDDU"}, want: "....", warnings: []WarningKind{WarnFailOpen}},
		{name: "fail-open still lets servers come back", directors: three, failOpen: 50, health: "DD", views: map[string]string{"d1": "UDDD", "d2": "UDDD", "d3": "UDDD"}, want: "U...", warnings: []WarningKind{WarnFailOpen}},
		{name: "fail-open holds agents' downs too", directors: three, failOpen: 50, health: "UUUU", agents: "DDD-", views: map[string]string{"d1": "UUUU"}, want: "....", warnings: []WarningKind{WarnFailOpen}},
		{name: "no fail-open share takes all down", directors: three, views: map[string]string{"d1": "DDDD", "d2": "DDDD", "d3": "DDDD"}, want: "DDDD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Aggregate(tt.input(t))
			if got := outcome(d, len(tt.want)); got != tt.want {
				t.Errorf("transitions %s, want %s", got, tt.want)
			}
			if got := kinds(d.Warnings); !slices.Equal(got, tt.warnings) {
				t.Errorf("warnings %v, want %v: %+v", got, tt.warnings, d.Warnings)
			}
		})
	}
}

func TestAggregateFillsReasonAndSince(t *testing.T) {
	c := aggCase{directors: "d1 d2 d3", agents: "-D", health: "D", want: "..",
		views: map[string]string{"d1": "U-", "d2": "U-", "d3": "D-"}}
	d := Aggregate(c.input(t))
	want := []fsm.SetHealth{
		{Key: rsKey(1), Health: fsm.HealthUp, Reason: "connected (2 of 3 directors)", Since: t0},
		{Key: rsKey(2), Health: fsm.HealthDown, Reason: "agent: local check", Since: t0},
	}
	if !reflect.DeepEqual(d.Command.Updates, want) {
		t.Errorf("updates %+v, want %+v", d.Command.Updates, want)
	}
	// The batch must be one the state accepts as is.
	in := c.input(t)
	if err := in.State.Execute(d.Command); err != nil {
		t.Fatalf("the state refuses the decision: %v", err)
	}
	if rs, _ := in.State.RealServer(rsKey(1)); rs.Health != fsm.HealthUp || rs.HealthSince != t0 {
		t.Errorf("after commit: %+v", rs)
	}
}

func TestAggregateReasonIsTheMostCommonAmongTheMajority(t *testing.T) {
	c := aggCase{directors: "d1 d2 d3", want: "."}
	in := c.input(t)
	in.Views = []View{
		{Director: "d1", At: t0, Servers: []ServerView{{RSKey: rsKey(1), Health: fsm.HealthDown, Reason: "connect: no route to host"}}},
		{Director: "d2", At: t0, Servers: []ServerView{{RSKey: rsKey(1), Health: fsm.HealthDown, Reason: "timeout after 1s (connect)"}}},
		{Director: "d3", At: t0, Servers: []ServerView{{RSKey: rsKey(1), Health: fsm.HealthDown, Reason: "timeout after 1s (connect)"}}},
	}
	d := Aggregate(in)
	if len(d.Command.Updates) != 1 || d.Command.Updates[0].Reason != "timeout after 1s (connect) (3 of 3 directors)" {
		t.Errorf("updates %+v, want the reason two of three give", d.Command.Updates)
	}
}

func TestAggregateCountsTheNewestViewOfADirector(t *testing.T) {
	c := aggCase{directors: "d1 d2", want: "."}
	in := c.input(t)
	old := View{Director: "d2", At: t0.Add(-2 * time.Second), Servers: []ServerView{{RSKey: rsKey(1), Health: fsm.HealthDown}}}
	newer := View{Director: "d2", At: t0.Add(-time.Second), Servers: []ServerView{{RSKey: rsKey(1), Health: fsm.HealthUp}}}
	lead := View{Director: "d1", At: t0, Servers: []ServerView{{RSKey: rsKey(1), Health: fsm.HealthDown}}}
	for _, order := range [][]View{{old, newer, lead}, {newer, old, lead}} {
		in.Views = order
		if got := outcome(Aggregate(in), 1); got != "." {
			t.Errorf("with views in order %v: %s, want d2's newer up to make a tie", order, got)
		}
	}
}

func TestAggregateIsDeterministic(t *testing.T) {
	c := aggCase{directors: "d1 d2 d3 d4 d5", failOpen: 80, want: "..........",
		views: map[string]string{"d1": "DDDDDDUUUU", "d2": "DUDUDUDUDU", "d3": "UUDDUUDDUU", "d4": "DDDDDDDDDD", "d5": "UUUUUUUUUD"}}
	in := c.input(t)
	first := Aggregate(in)
	for i := range 20 {
		rotated := append(slices.Clone(in.Views[i%5:]), in.Views[:i%5]...)
		in.Views = rotated
		if got := Aggregate(in); !reflect.DeepEqual(got, first) {
			t.Fatalf("run %d differs:\n%+v\nwant\n%+v", i, got, first)
		}
	}
	if first.Empty() {
		t.Fatal("the case decides nothing: it tests nothing")
	}
}

func TestWarningLogSaysEachConditionOnce(t *testing.T) {
	var buf strings.Builder
	l := NewWarningLog(textLogger(&buf))
	w := Warning{Kind: WarnFailOpen, Service: "web", Servers: []fsm.RSKey{rsKey(1)}, Message: "service web: holding"}
	l.Report([]Warning{w})
	l.Report([]Warning{w})
	w2 := w
	w2.Servers = []fsm.RSKey{rsKey(1), rsKey(2)}
	l.Report([]Warning{w2})
	l.Report(nil)
	l.Report(nil)
	got := buf.String()
	if n := strings.Count(got, "service web: holding"); n != 2 {
		t.Errorf("the warning was logged %d times, want twice (it appeared, its servers changed):\n%s", n, got)
	}
	if n := strings.Count(got, "health warning cleared"); n != 1 {
		t.Errorf("cleared logged %d times, want once:\n%s", n, got)
	}
}
