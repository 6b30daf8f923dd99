package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/cluster"
	"github.com/raftlvs/raftlvs/cluster/apiserver"
	"github.com/raftlvs/raftlvs/dialect/ipvsadm"
	"github.com/raftlvs/raftlvs/fsm"
)

// leaderStore is a single-node leader over a real fsm.State.
type leaderStore struct {
	mu    sync.Mutex
	state *fsm.State
}

func (s *leaderStore) Apply(_ context.Context, c fsm.Command) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sc, ok := c.(fsm.StageChunk); ok {
		sc.At = time.Now().UTC() // as cluster.Node.Apply stamps the leader's clock
		c = sc
	}
	p, err := s.state.Prepare(c)
	if err != nil {
		return err
	}
	return s.state.Execute(p)
}
func (s *leaderStore) View(fn func(*fsm.State))                         { s.mu.Lock(); defer s.mu.Unlock(); fn(s.state) }
func (s *leaderStore) Join(context.Context, fsm.Director) error         { return nil }
func (s *leaderStore) Remove(context.Context, string) error             { return nil }
func (s *leaderStore) TransferLeadership(context.Context, string) error { return nil }
func (s *leaderStore) IsLeader() bool                                   { return true }
func (s *leaderStore) LeaderAPIAddr() (string, error)                   { return "", nil }
func (s *leaderStore) Status() cluster.Status                           { return cluster.Status{NodeID: "d1", State: "Leader"} }
func (s *leaderStore) Serving() bool                                    { return true }
func (s *leaderStore) ReadIndex(context.Context) error                  { return nil }
func (s *leaderStore) WaitVersion(context.Context, uint64) error        { return nil }
func (s *leaderStore) DryRun(_ context.Context, c fsm.Command) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.DryRun(c)
}

// testDirector starts an API server over a fresh state and returns its store and address.
func testDirector(t *testing.T) (*leaderStore, string) {
	t.Helper()
	store := &leaderStore{state: fsm.NewState()}
	hs := httptest.NewServer(apiserver.New(store, nil))
	t.Cleanup(hs.Close)
	return store, hs.URL
}

func raftlvs(t *testing.T, url, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(append([]string{"--insecure", "--api", url}, args...), strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func mustRun(t *testing.T, url string, args ...string) {
	t.Helper()
	if code, _, stderr := raftlvs(t, url, "", args...); code != exitOK {
		t.Fatalf("raftlvs %s: exit %d: %s", strings.Join(args, " "), code, stderr)
	}
}

func TestFlagsBecomeRequests(t *testing.T) {
	tests := []struct {
		name  string
		setup [][]string
		args  []string
		check func(st *fsm.State) error
	}{
		{"ipvsadm-style -p with a separate value", nil,
			[]string{"service", "add", "-t", "192.0.2.10:80", "-s", "rr", "-p", "300", "--name", "web"},
			func(st *fsm.State) error {
				s, _ := st.Service("web")
				return expect(s.Scheduler == "rr" && s.Persistence == 300 && s.Protocol == fsm.TCP && s.Port == 80, "%+v", s)
			}},
		{"bare -p is ipvsadm's default timeout, -M a dotted netmask", nil,
			[]string{"service", "add", "-t", "192.0.2.10:443", "-p", "-M", "255.255.255.0"},
			func(st *fsm.State) error {
				s, _ := st.Service("tcp-192.0.2.10-443")
				return expect(s.Persistence == 360 && s.PersistMask == 24, "%+v", s)
			}},
		{"udp one-packet", nil,
			[]string{"service", "add", "-u", "192.0.2.10:53", "-o", "--name", "dns"},
			func(st *fsm.State) error {
				s, _ := st.Service("dns")
				return expect(s.OnePacket && s.Protocol == fsm.UDP, "%+v", s)
			}},
		{"ipv6 fwmark with scheduler flags and dr", nil,
			[]string{"service", "add", "-f", "100", "-6", "-s", "mh", "-b", "mh-fallback,mh-port", "-g"},
			func(st *fsm.State) error {
				s, _ := st.Service("fwm6-100")
				return expect(s.Family == fsm.IPv6 && s.Forwarding == fsm.DR && len(s.SchedFlags) == 2, "%+v", s)
			}},
		{"edit changes only the flags given", [][]string{{"service", "add", "-t", "192.0.2.10:80", "-p", "600", "--name", "web"}},
			[]string{"service", "edit", "web", "-s", "sh", "--forward", "tun"},
			func(st *fsm.State) error {
				s, _ := st.Service("web")
				return expect(s.Scheduler == "sh" && s.Persistence == 600 && s.Forwarding == fsm.TUN, "%+v", s)
			}},
		{"rm by ipvsadm match", [][]string{{"service", "add", "-t", "192.0.2.10:80", "--name", "web"}},
			[]string{"service", "rm", "-t", "192.0.2.10:80"},
			func(st *fsm.State) error {
				return expect(len(st.Services()) == 0, "%d services left", len(st.Services()))
			}},
		{"server add: weight 0 kept, port from the service", [][]string{{"service", "add", "-t", "192.0.2.10:80", "--name", "web"}},
			[]string{"server", "add", "web", "198.51.100.21", "-w", "0", "-x", "100", "-y", "10"},
			func(st *fsm.State) error {
				rs := st.RealServers("web")
				return expect(len(rs) == 1 && rs[0].Weight == 0 && rs[0].Port == 80 && rs[0].UpperThreshold == 100 && rs[0].LowerThreshold == 10, "%+v", rs)
			}},
		{"server add: default weight 1", [][]string{{"service", "add", "-t", "192.0.2.10:80", "--name", "web", "-m"}},
			[]string{"server", "add", "web", "198.51.100.21:8080"},
			func(st *fsm.State) error {
				rs := st.RealServers("web")
				return expect(len(rs) == 1 && rs[0].Weight == 1 && rs[0].Port == 8080, "%+v", rs)
			}},
		{"server add in ipvsadm's form: -t VIP:PORT -r ADDR:PORT", [][]string{{"service", "add", "-t", "192.0.2.10:80", "--name", "web"}},
			[]string{"server", "add", "-t", "192.0.2.10:80", "-r", "198.51.100.21:80", "-w", "3"},
			func(st *fsm.State) error {
				rs := st.RealServers("web")
				return expect(len(rs) == 1 && rs[0].Weight == 3 && rs[0].Port == 80, "%+v", rs)
			}},
		{"server add -u VIP:PORT with the real server as the argument", [][]string{{"service", "add", "-u", "192.0.2.10:53", "--name", "dns"}},
			[]string{"server", "add", "-u", "192.0.2.10:53", "198.51.100.31"},
			func(st *fsm.State) error {
				rs := st.RealServers("dns")
				return expect(len(rs) == 1 && rs[0].Port == 53, "%+v", rs)
			}},
		{"server edit and rm by -f FWMARK", [][]string{{"service", "add", "-f", "7", "--name", "mark"}, {"server", "add", "mark", "198.51.100.21"}, {"server", "add", "mark", "198.51.100.22"},
			{"server", "edit", "-f", "7", "-r", "198.51.100.21", "-w", "9"}},
			[]string{"server", "rm", "-f", "7", "198.51.100.22"},
			func(st *fsm.State) error {
				rs := st.RealServers("mark")
				return expect(len(rs) == 1 && rs[0].Weight == 9, "%+v", rs)
			}},
		{"server edit --drain keeps the weight", [][]string{{"service", "add", "-t", "192.0.2.10:80", "--name", "web"}, {"server", "add", "web", "198.51.100.21", "-w", "5"}},
			[]string{"server", "edit", "web", "198.51.100.21", "--drain"},
			func(st *fsm.State) error {
				rs := st.RealServers("web")
				return expect(len(rs) == 1 && rs[0].Weight == 5 && rs[0].Admin == fsm.Draining, "%+v", rs)
			}},
		{"service add with a check and its policies", nil,
			[]string{"service", "add", "-t", "192.0.2.10:80", "--name", "web", "--check", "http:/healthz,status=200-299,fall=2",
				"--on-down", "inhibit", "--quorum", "3", "--hysteresis", "1", "--sorry", "198.51.100.99:8080", "--fail-open", "50"},
			func(st *fsm.State) error {
				s, _ := st.Service("web")
				hc := s.HealthCheck
				return expect(hc != nil && hc.Type == fsm.CheckHTTP && hc.Path == "/healthz" && hc.Fall == 2 && s.OnDown == fsm.DownInhibit &&
					s.Quorum == 3 && s.Hysteresis == 1 && s.SorryServer == netip.MustParseAddrPort("198.51.100.99:8080") && s.FailOpenPercent == 50, "%+v %+v", s, hc)
			}},
		{"service edit --check off removes it", [][]string{{"service", "add", "-t", "192.0.2.10:80", "--name", "web", "--check", "tcp"}},
			[]string{"service", "edit", "web", "--check", "off"},
			func(st *fsm.State) error {
				s, _ := st.Service("web")
				return expect(s.HealthCheck == nil, "%+v", s.HealthCheck)
			}},
		{"server add with its own check; edit --check inherit clears it", [][]string{{"service", "add", "-t", "192.0.2.10:80", "--name", "web", "--check", "tcp"},
			{"server", "add", "web", "198.51.100.21", "--check", "http:/status"}},
			[]string{"server", "edit", "web", "198.51.100.21", "-w", "4", "--check", "inherit"},
			func(st *fsm.State) error {
				rs := st.RealServers("web")
				return expect(len(rs) == 1 && rs[0].HealthCheck == nil && rs[0].Weight == 4, "%+v", rs)
			}},
		{"server rm without port", [][]string{{"service", "add", "-t", "[2001:db8::10]:80", "--name", "web6"}, {"server", "add", "web6", "[2001:db8::21]:80"}},
			[]string{"server", "rm", "web6", "2001:db8::21"},
			func(st *fsm.State) error {
				return expect(len(st.RealServers("web6")) == 0, "left %+v", st.RealServers("web6"))
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, url := testDirector(t)
			for _, s := range tt.setup {
				mustRun(t, url, s...)
			}
			mustRun(t, url, tt.args...)
			store.View(func(st *fsm.State) {
				if err := tt.check(st); err != nil {
					t.Error(err)
				}
			})
		})
	}
}

func expect(ok bool, format string, args ...any) error {
	if ok {
		return nil
	}
	return fmt.Errorf("unexpected result: "+format, args...)
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		want     int
		inStderr string
	}{
		{"unknown flag", []string{"service", "add", "--bogus"}, exitUsage, "unknown flag"},
		{"unknown command", []string{"frobnicate"}, exitUsage, "unknown command"},
		{"missing arguments", []string{"server", "add", "web"}, exitUsage, "SERVICE and ADDR"},
		{"two matches", []string{"service", "add", "-t", "192.0.2.1:80", "-u", "192.0.2.1:53"}, exitUsage, "one of"},
		{"drain and activate", []string{"server", "edit", "web", "198.51.100.21", "--drain", "--activate"}, exitUsage, "none of the others"},
		{"bad netmask", []string{"service", "add", "-t", "192.0.2.1:80", "-p", "-M", "255.0.255.0"}, exitUsage, "contiguous"},
		{"join without its flags", []string{"join", "--id", "d2"}, exitUsage, "required"},
		{"duplicate service", []string{"service", "add", "-t", "192.0.2.10:81", "--name", "web"}, exitError, "already exists"},
		{"invalid scheduler names the field", []string{"service", "add", "-t", "192.0.2.10:82", "-s", "best"}, exitError, "scheduler"},
		{"missing service", []string{"service", "rm", "nope"}, exitError, "no service nope"},
		{"a check whose timeout outlasts its interval names the field", []string{"service", "add", "-t", "192.0.2.10:83", "--check", "tcp,interval=1s,timeout=2s"}, exitError, "health_check.timeout_ms"},
		{"a check that does not parse names the key", []string{"service", "add", "-t", "192.0.2.10:84", "--check", "http,colour=blue"}, exitUsage, "unknown key"},
		{"missing real server", []string{"server", "rm", "web", "198.51.100.99"}, exitError, "no real server"},
		{"a port out of range says so", []string{"service", "add", "-t", "192.0.2.10:70000"}, exitUsage, "port 70000 is out of range 1..65535"},
		{"a real server's port out of range says so", []string{"server", "add", "web", "198.51.100.21:99999"}, exitUsage, "port 99999 is out of range"},
		{"a service named by its address is explained", []string{"server", "add", "192.0.2.10:80", "198.51.100.21"}, exitError,
			"services go by name, not by address (raftlvs service ls lists them; one added without --name is called tcp-192.0.2.10-80); to name it by its address as ipvsadm does, give -t 192.0.2.10:80"},
		{"the same for an edit", []string{"server", "edit", "192.0.2.10:80", "198.51.100.21", "-w", "2"}, exitError, "give -t 192.0.2.10:80"},
		{"and for a service's removal", []string{"service", "rm", "192.0.2.10:80"}, exitError, "give -t 192.0.2.10:80"},
		{"a service's edit, which has no match flag for it", []string{"service", "edit", "192.0.2.10:80", "-s", "rr"}, exitError, "one added without --name is called tcp-192.0.2.10-80)"},
		{"no service with that match", []string{"server", "add", "-t", "192.0.2.10:81", "198.51.100.21"}, exitError, "no service matches -t 192.0.2.10:81"},
		{"a match and a name", []string{"server", "add", "web", "-t", "192.0.2.10:80", "198.51.100.21"}, exitUsage, "got 2 argument(s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, url := testDirector(t)
			mustRun(t, url, "service", "add", "-t", "192.0.2.10:80", "--name", "web")
			var before uint64
			store.View(func(st *fsm.State) { before = st.Version() })
			code, _, stderr := raftlvs(t, url, "", tt.args...)
			if code != tt.want || !strings.HasPrefix(stderr, "raftlvs: ") || !strings.Contains(stderr, tt.inStderr) {
				t.Errorf("exit %d stderr %q, want exit %d and raftlvs: …%s…", code, stderr, tt.want, tt.inStderr)
			}
			store.View(func(st *fsm.State) {
				if st.Version() != before {
					t.Error("a failed command changed the state")
				}
			})
		})
	}
}

func TestSaveRestore(t *testing.T) {
	rules := `-A -t 192.0.2.10:80 -s wlc -p 300
-a -t 192.0.2.10:80 -r 198.51.100.21:80 -g -w 10
-a -t 192.0.2.10:80 -r 198.51.100.22:80 -g -w 0
-A -u 192.0.2.10:53 -s rr -o
-a -u 192.0.2.10:53 -r 198.51.100.31:53 -m -w 1
`
	store, url := testDirector(t)
	if code, _, stderr := raftlvs(t, url, rules, "restore"); code != exitOK {
		t.Fatalf("restore: %d %s", code, stderr)
	}
	code, saved, stderr := raftlvs(t, url, "", "save")
	if code != exitOK || saved != rules {
		t.Fatalf("save: %d %s\n%s\nwant\n%s", code, stderr, saved, rules)
	}

	t.Run("a bad line rejects everything, with its number", func(t *testing.T) {
		var before uint64
		store.View(func(st *fsm.State) { before = st.Version() })
		bad := "-A -t 192.0.2.20:80 -s rr\n-a -t 192.0.2.20:80 -r 198.51.100.1:80 -w lots\n"
		code, _, stderr := raftlvs(t, url, bad, "restore", "--replace", "-")
		if code != exitError || !strings.Contains(stderr, "line 2: ") {
			t.Errorf("exit %d stderr %q", code, stderr)
		}
		store.View(func(st *fsm.State) {
			if st.Version() != before {
				t.Error("a rejected restore changed the state")
			}
		})
	})

	t.Run("replace keeps what ipvsadm cannot say of the services that stay", func(t *testing.T) {
		mustRun(t, url, "service", "edit", "tcp-192.0.2.10-80", "--check", "http:/healthz,fall=2", "--on-down", "inhibit")
		key := fsm.RSKey{Service: "tcp-192.0.2.10-80", Addr: netip.MustParseAddr("198.51.100.21"), Port: 80}
		store.mu.Lock()
		p, _ := store.state.Prepare(fsm.SetHealth{Key: key, Health: fsm.HealthDown, Reason: "HTTP 503"})
		store.state.Execute(p)
		store.mu.Unlock()
		// The same table with one real server's weight changed and the UDP service gone.
		next := "-A -t 192.0.2.10:80 -s wlc -p 300\n-a -t 192.0.2.10:80 -r 198.51.100.21:80 -g -w 7\n-a -t 192.0.2.10:80 -r 198.51.100.22:80 -g -w 0\n"
		if code, _, stderr := raftlvs(t, url, next, "restore", "--replace"); code != exitOK {
			t.Fatalf("restore --replace: %d %s", code, stderr)
		}
		store.View(func(st *fsm.State) {
			svc, _ := st.Service("tcp-192.0.2.10-80")
			rs, _ := st.RealServer(key)
			_, udp := st.Service("udp-192.0.2.10-53")
			if svc.HealthCheck == nil || svc.HealthCheck.Path != "/healthz" || svc.OnDown != fsm.DownInhibit || rs.Weight != 7 || rs.Health != fsm.HealthDown || udp {
				t.Errorf("after replace: service %+v, real server %+v, udp service still there %v", svc, rs, udp)
			}
		})
	})

	t.Run("replace swaps the whole table in one batch", func(t *testing.T) {
		next := "-A -t 192.0.2.30:80 -s rr\n-a -t 192.0.2.30:80 -r 198.51.100.5:80 -m -w 2\n"
		if code, _, stderr := raftlvs(t, url, next, "restore", "--replace"); code != exitOK {
			t.Fatalf("restore --replace: %d %s", code, stderr)
		}
		_, saved, _ := raftlvs(t, url, "", "save")
		if saved != next {
			t.Errorf("after replace:\n%s", saved)
		}
	})
}

func TestStatusRendering(t *testing.T) {
	st := &api.StatusResponse{
		At: time.Date(2026, 11, 21, 12, 0, 30, 0, time.UTC),
		Node: api.NodeStatus{NodeID: "d1", State: "Leader", LeaderID: "d1", Term: 4, CommitIndex: 42, AppliedIndex: 42,
			Voters: []api.Voter{ // not sorted: the rendering sorts them
				{ID: "d3", RaftAddr: "10.0.0.3:7000", APIAddr: "10.0.0.3:7080", Suffrage: "Voter", Contact: "unreachable",
					FailingSince: time.Date(2026, 11, 21, 12, 0, 18, 0, time.UTC), LastContact: time.Date(2026, 11, 21, 12, 0, 17, 500e6, time.UTC)},
				{ID: "d1", RaftAddr: "10.0.0.1:7000", APIAddr: "10.0.0.1:7080", Suffrage: "Voter", Contact: "self"},
				{ID: "d2", RaftAddr: "10.0.0.2:7000", APIAddr: "10.0.0.2:7080", Suffrage: "Voter", Contact: "reachable", LastContact: time.Date(2026, 11, 21, 12, 0, 29, 900e6, time.UTC)},
			}},
		ClusterID: "lab", Version: 17,
		Services: []api.ServiceInfo{
			{Service: fsm.Service{Name: "web", Protocol: fsm.TCP, VIP: netip.MustParseAddr("192.0.2.10"), Port: 80, Family: fsm.IPv4, Scheduler: "wlc", Persistence: 300, PersistMask: 32, Forwarding: fsm.DR},
				RealServers: []fsm.RealServer{
					{Service: "web", Addr: netip.MustParseAddr("198.51.100.21"), Port: 80, Weight: 10, Admin: fsm.Active, Health: fsm.HealthUp},
					{Service: "web", Addr: netip.MustParseAddr("198.51.100.22"), Port: 80, Weight: 5, Admin: fsm.Draining, Health: fsm.HealthUp},
				}},
			{Service: fsm.Service{Name: "hash", Protocol: fsm.TCP, VIP: netip.MustParseAddr("192.0.2.11"), Port: 443, Family: fsm.IPv4, Scheduler: "sh", SchedFlags: []string{"sh-fallback", "sh-port"}, PersistMask: 32, Forwarding: fsm.TUN,
				HealthCheck: &fsm.HealthCheck{Type: fsm.CheckHTTPS, Path: "/healthz"}, OnDown: fsm.DownInhibit, Quorum: 2, Hysteresis: 1, QuorumDown: true, SorryServer: netip.MustParseAddrPort("198.51.100.99:443")},
				RealServers: []fsm.RealServer{{Service: "hash", Addr: netip.MustParseAddr("198.51.100.41"), Port: 443, Weight: 1, Admin: fsm.Active, Health: fsm.HealthDown,
					HealthReason: "HTTP 503", HealthSince: time.Date(2026, 12, 1, 10, 0, 3, 0, time.UTC)}}},
			{Service: fsm.Service{Name: "fwm-100", FWMark: 100, Family: fsm.IPv4, Scheduler: "wrr", Persistence: 360, PersistMask: 24, Forwarding: fsm.NAT},
				RealServers: []fsm.RealServer{{Service: "fwm-100", Addr: netip.MustParseAddr("198.51.100.51"), Weight: 1, Admin: fsm.Active, Health: fsm.HealthUnknown}}},
		},
		DataPlane: &api.DataPlane{
			VIPs:        []api.VIP{{Addr: netip.MustParseAddr("192.0.2.10"), Interface: "eth0"}},
			SyncDaemons: []api.SyncDaemon{{Role: "master", Interface: "eth1", SyncID: 7}},
			Services: []api.ServiceCounters{{Service: "web", Stats: api.Counters{Conns: 123456789, InPkts: 5, InBytes: 2_000_000_000},
				RealServers: []api.RealServerCounters{{Addr: netip.MustParseAddr("198.51.100.21"), Port: 80, ActiveConns: 3, InactiveConns: 12, Stats: api.Counters{Conns: 7, CPS: 2}}}}},
		},
		Agents: []api.Agent{
			{ID: "rs1", Gossip: netip.MustParseAddrPort("198.51.100.21:7946"), State: "alive", Addr: netip.MustParseAddr("198.51.100.21"),
				Services: []api.AgentService{{Service: "web", Weight: 10}}},
			{ID: "rs2", Gossip: netip.MustParseAddrPort("198.51.100.22:7946"), State: "alive", Addr: netip.MustParseAddr("198.51.100.22"),
				Services: []api.AgentService{{Service: "web", Port: 8080, Weight: 5}}, Draining: true},
			{ID: "rs3", Gossip: netip.MustParseAddrPort("198.51.100.23:7946"), State: "dead", Addr: netip.MustParseAddr("198.51.100.23")},
		},
	}
	tests := []struct {
		name  string
		mode  ipvsadm.ListMode
		whole bool // want is the whole output, not a part of it
		want  string
	}{
		{"plain like ipvsadm -Ln", ipvsadm.ListPlain, true, `Cluster lab, state version 17
Node    d1: Leader, term 4, commit 42, applied 42
Leader  d1
Voters  d1           leader   self                        -          raft 10.0.0.1:7000         api 10.0.0.1:7080
        d2           follower reachable                   100ms ago  raft 10.0.0.2:7000         api 10.0.0.2:7080
        d3           follower unreachable                 12.5s ago  raft 10.0.0.3:7000         api 10.0.0.3:7080
                     unreachable for 12s
        (contact, last contact: as the leader sees its followers, a follower its leader; unknown = only the leader knows)

Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn State
TCP  192.0.2.10:80 wlc persistent 300  [web]
  -> 198.51.100.21:80             Route   10     3          12         up
  -> 198.51.100.22:80             Route   5      -          -          draining
TCP  192.0.2.11:443 sh (sh-fallback,sh-port)  [hash, check https:/healthz, on-down inhibit, quorum 2±1 lost: sorry server 198.51.100.99:443]
  -> 198.51.100.41:443            Tunnel  1      -          -          down since 2026-12-01 10:00:03Z (HTTP 503)
FWM  100 wrr persistent 360 mask 255.255.255.0  [fwm-100]
  -> 198.51.100.51:0              Masq    1      -          -          unknown
State: up = checks pass; down = checks fail, out of rotation (since when, and why);
       unknown = not checked (yet), in rotation; draining = weight 0 in IPVS, its connections finish

VIPs held:
  192.0.2.10 on eth0
Sync daemons:
  master sync daemon (mcast=eth1, syncid=7)
Agents:
  rs1              alive    198.51.100.21    web@10
  rs2              draining 198.51.100.22    web:8080@5
  rs3              dead     198.51.100.23
`},
		{"stats like ipvsadm -Ln --stats", ipvsadm.ListStats, false, `Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  192.0.2.10:80                 123456K        5        0    2000M        0
  -> 198.51.100.21:80                    7        0        0        0        0
  -> 198.51.100.22:80                    0        0        0        0        0
TCP  192.0.2.11:443                      0        0        0        0        0
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := renderStatus(&b, st, tt.mode, false); err != nil {
				t.Fatal(err)
			}
			if tt.whole && b.String() != tt.want || !strings.Contains(b.String(), tt.want) {
				t.Errorf("got:\n%s\nwant it to contain:\n%s", b.String(), tt.want)
			}
		})
	}
}

func TestRestoreOfAnySizeIsStagedAndAllOrNothing(t *testing.T) {
	// 1,200 services × 10 real servers: 13,200 commands, more than one chunk.
	var b strings.Builder
	for i := range 1200 {
		vip := fmt.Sprintf("10.%d.%d.1:80", 20+i/250, i%250)
		fmt.Fprintf(&b, "-A -t %s -s rr\n", vip)
		for j := range 10 {
			fmt.Fprintf(&b, "-a -t %s -r 192.0.%d.%d:80 -m -w 1\n", vip, i%250, 10+j)
		}
	}
	rules := b.String()
	store, url := testDirector(t)
	// A dry run stages it, has the leader check the commit, and aborts: nothing applied,
	// nothing left staged.
	if code, out, stderr := raftlvs(t, url, rules, "restore", "--dry-run"); code != exitOK || !strings.Contains(out, "accepts the 13200 commands") {
		t.Fatalf("restore --dry-run: %d %q %s", code, out, stderr)
	}
	store.View(func(st *fsm.State) {
		if len(st.Services()) != 0 || len(st.Staged()) != 0 {
			t.Fatalf("after a dry run: %d services, %d staged", len(st.Services()), len(st.Staged()))
		}
	})
	code, out, stderr := raftlvs(t, url, rules, "restore")
	if code != exitOK || !strings.Contains(out, "restored 13200 commands") {
		t.Fatalf("restore: %d %q %s", code, out, stderr)
	}
	store.View(func(st *fsm.State) {
		if len(st.Services()) != 1200 || len(st.AllRealServers()) != 12000 || len(st.Staged()) != 0 {
			t.Fatalf("%d services, %d real servers, %d staged", len(st.Services()), len(st.AllRealServers()), len(st.Staged()))
		}
	})
	// The same again fails on its first service (it exists): nothing is applied, and the
	// transaction is aborted rather than left staged.
	if code, _, stderr := raftlvs(t, url, rules, "restore"); code != exitError || !strings.Contains(stderr, "already exists") {
		t.Fatalf("a restore of what exists: exit %d, %s", code, stderr)
	}
	// And its dry run says so too.
	if code, _, stderr := raftlvs(t, url, rules, "restore", "--dry-run"); code != exitError || !strings.Contains(stderr, "already exists") {
		t.Fatalf("a dry run of what exists: exit %d, %s", code, stderr)
	}
	store.View(func(st *fsm.State) {
		if len(st.Staged()) != 0 || len(st.Services()) != 1200 {
			t.Fatalf("after a failed staged restore: %d staged, %d services", len(st.Staged()), len(st.Services()))
		}
	})
	if code, saved, _ := raftlvs(t, url, "", "save"); code != exitOK || strings.Count(saved, "\n") != 13200 {
		t.Fatalf("save after the restores: %d lines", strings.Count(saved, "\n"))
	}
}

// unknownOutcomeStore is a leader that loses its leadership while committing every write.
type unknownOutcomeStore struct{ leaderStore }

func (s *unknownOutcomeStore) Apply(context.Context, fsm.Command) error {
	return fmt.Errorf("apply: %w", cluster.ErrLeadershipLost)
}

func TestAWriteWhoseOutcomeIsUnknownSaysSoAndExitsWithItsOwnCode(t *testing.T) {
	hs := httptest.NewServer(apiserver.New(&unknownOutcomeStore{leaderStore{state: fsm.NewState()}}, nil))
	defer hs.Close()
	code, _, stderr := raftlvs(t, hs.URL, "", "service", "add", "-t", "192.0.2.10:80")
	if code != exitUnknown || !strings.Contains(stderr, "outcome is unknown") || !strings.Contains(stderr, "may or may not") {
		t.Fatalf("exit %d: %s; want exit %d saying the outcome is unknown", code, stderr, exitUnknown)
	}
	// A refusal is a plain failure.
	_, url := testDirector(t)
	mustRun(t, url, "service", "add", "-t", "192.0.2.10:80", "--name", "web")
	if code, _, stderr := raftlvs(t, url, "", "service", "add", "-t", "192.0.2.10:80", "--name", "web"); code != exitError || strings.Contains(stderr, "unknown") {
		t.Fatalf("a refused write: exit %d: %s; want exit %d", code, stderr, exitError)
	}
}

func TestStatusWarnsOfAClusterOfWitnessesAlone(t *testing.T) {
	store, url := testDirector(t)
	w := fsm.Director{ID: "w1", RaftAddr: "127.0.0.1:7000", APIAddr: "127.0.0.1:7080", Witness: true}
	if err := store.Apply(context.Background(), fsm.RegisterDirector{Director: w}); err != nil {
		t.Fatal(err)
	}
	if _, _, stderr := raftlvs(t, url, "", "status"); !strings.Contains(stderr, "every director of this cluster is a witness") {
		t.Fatalf("status of a cluster of witnesses: %q, want a warning", stderr)
	}
	d := fsm.Director{ID: "d2", RaftAddr: "127.0.0.1:7001", APIAddr: "127.0.0.1:7081"}
	if err := store.Apply(context.Background(), fsm.RegisterDirector{Director: d}); err != nil {
		t.Fatal(err)
	}
	if _, _, stderr := raftlvs(t, url, "", "status"); strings.Contains(stderr, "witness") {
		t.Fatalf("status with a full director: %q, want no warning", stderr)
	}
}
