package fsm

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

var (
	vip4 = netip.MustParseAddr("192.0.2.10")
	vip6 = netip.MustParseAddr("2001:db8::10")
	rs4  = netip.MustParseAddr("198.51.100.21")
	rs6  = netip.MustParseAddr("2001:db8::21")
)

func webService() Service {
	return Service{Name: "web", Protocol: TCP, VIP: vip4, Port: 80}
}

// mustApply prepares and executes c, failing the test on any error.
func mustApply(t *testing.T, s *State, c Command) {
	t.Helper()
	p, err := s.Prepare(c)
	if err != nil {
		t.Fatalf("prepare %T: %v", c, err)
	}
	if err := s.Execute(p); err != nil {
		t.Fatalf("execute %T: %v", c, err)
	}
}

func TestPrepareRejectsBadServices(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*Service)
		field string
	}{
		{"missing vip", func(s *Service) { s.VIP = netip.Addr{} }, "vip"},
		{"multicast vip", func(s *Service) { s.VIP = netip.MustParseAddr("224.0.0.1") }, "vip"},
		{"unspecified vip", func(s *Service) { s.VIP = netip.MustParseAddr("0.0.0.0") }, "vip"},
		{"unknown protocol", func(s *Service) { s.Protocol = "icmp" }, "protocol"},
		{"no protocol", func(s *Service) { s.Protocol = "" }, "protocol"},
		{"unknown scheduler", func(s *Service) { s.Scheduler = "fastest" }, "scheduler"},
		{"sh flag on rr", func(s *Service) { s.Scheduler = "rr"; s.SchedFlags = []string{FlagSHPort} }, "sched_flags"},
		{"unknown flag", func(s *Service) { s.SchedFlags = []string{"turbo"} }, "sched_flags"},
		{"port 0 without persistence", func(s *Service) { s.Port = 0 }, "port"},
		{"family mismatch", func(s *Service) { s.Family = IPv6 }, "family"},
		{"fwmark with vip", func(s *Service) { s.FWMark = 7 }, "fwmark"},
		{"persistence too long", func(s *Service) { s.Persistence = 1<<32 - 1 }, "persistence"},
		{"mask too long", func(s *Service) { s.PersistMask = 33 }, "persist_mask"},
		{"pe without persistence", func(s *Service) { s.PersistEngine = "sip" }, "persist_engine"},
		{"unknown pe", func(s *Service) { s.Persistence = 60; s.PersistEngine = "rtsp" }, "persist_engine"},
		{"ops on tcp", func(s *Service) { s.OnePacket = true }, "one_packet"},
		{"unknown forwarding", func(s *Service) { s.Forwarding = "fullnat" }, "forwarding"},
		{"bad name", func(s *Service) { s.Name = "-web" }, "name"},
		{"name with slash", func(s *Service) { s.Name = "a/b" }, "name"},
		{"hysteresis not below quorum", func(s *Service) { s.Quorum = 2; s.Hysteresis = 2 }, "hysteresis"},
		{"sorry server of other family", func(s *Service) { s.SorryServer = netip.AddrPortFrom(rs6, 80) }, "sorry_server"},
		{"bad health check", func(s *Service) { s.HealthCheck = &HealthCheck{Type: "ping"} }, "health_check.type"},
		{"loopback vip", func(s *Service) { s.VIP = netip.MustParseAddr("127.0.0.1") }, "vip"},
		{"link-local vip", func(s *Service) { s.VIP = netip.MustParseAddr("169.254.1.1") }, "vip"},
		{"broadcast vip", func(s *Service) { s.VIP = netip.MustParseAddr("255.255.255.255") }, "vip"},
		{"zoned vip", func(s *Service) { s.VIP = netip.MustParseAddr("fe80::1%eth0"); s.Family = IPv6 }, "vip"},
		{"loopback sorry server", func(s *Service) { s.SorryServer = netip.MustParseAddrPort("127.0.0.1:80") }, "sorry_server"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewState()
			svc := webService()
			tt.edit(&svc)
			_, err := s.Prepare(AddService{Service: svc})
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field || !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want an invalid %q field error", err, tt.field)
			}
			if len(s.Services()) != 0 || s.Version() != 0 {
				t.Fatal("a rejected command changed the state")
			}
		})
	}
}

func TestPrepareFillsServiceDefaults(t *testing.T) {
	s := NewState()
	c, err := s.Prepare(AddService{Service: Service{Protocol: UDP, VIP: vip6, Port: 53, Scheduler: "sh", SchedFlags: []string{Flag2, Flag1}}})
	if err != nil {
		t.Fatal(err)
	}
	got := c.(AddService).Service
	if got.Name != "udp-2001:db8::10-53" || got.Family != IPv6 || got.PersistMask != 128 || got.Forwarding != NAT {
		t.Fatalf("defaults not filled: %+v", got)
	}
	if strings.Join(got.SchedFlags, ",") != "sh-fallback,sh-port" {
		t.Fatalf("flags not canonical for sh: %v", got.SchedFlags)
	}
}

func TestServicesConflict(t *testing.T) {
	s := NewState()
	mustApply(t, s, AddService{Service: webService()})
	dupName := webService()
	dupName.Port = 8080
	if _, err := s.Prepare(AddService{Service: dupName}); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate name: got %v", err)
	}
	sameMatch := webService()
	sameMatch.Name = "web2"
	if _, err := s.Prepare(AddService{Service: sameMatch}); !errors.Is(err, ErrConflict) {
		t.Fatalf("same vip:port: got %v", err)
	}
	if _, err := s.Prepare(EditService{Service: Service{Name: "nope", Protocol: TCP, VIP: vip4, Port: 81}}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("edit missing: got %v", err)
	}
}

func TestPrepareRejectsBadRealServers(t *testing.T) {
	tests := []struct {
		name  string
		rs    RealServer
		kind  error
		field string
	}{
		{"missing service", RealServer{Service: "nope", Addr: rs4, Weight: 1}, ErrNotFound, "service"},
		{"ipv6 under ipv4", RealServer{Service: "web", Addr: rs6, Weight: 1}, ErrInvalid, "addr"},
		{"weight too big", RealServer{Service: "web", Addr: rs4, Weight: 70000}, ErrInvalid, "weight"},
		{"negative weight", RealServer{Service: "web", Addr: rs4, Weight: -1}, ErrInvalid, "weight"},
		{"dr with other port", RealServer{Service: "web", Addr: rs4, Port: 8080, Weight: 1, Forwarding: DR}, ErrInvalid, "port"},
		{"tun with other port", RealServer{Service: "web", Addr: rs4, Port: 8080, Weight: 1, Forwarding: TUN}, ErrInvalid, "port"},
		{"lower above upper", RealServer{Service: "web", Addr: rs4, Weight: 1, UpperThreshold: 10, LowerThreshold: 20}, ErrInvalid, "lower_threshold"},
		{"bad origin", RealServer{Service: "web", Addr: rs4, Weight: 1, Origin: "someone"}, ErrInvalid, "origin"},
		{"bad admin", RealServer{Service: "web", Addr: rs4, Weight: 1, Admin: "paused"}, ErrInvalid, "admin"},
		{"loopback address", RealServer{Service: "web", Addr: netip.MustParseAddr("127.0.0.2"), Weight: 1}, ErrInvalid, "addr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewState()
			mustApply(t, s, AddService{Service: webService()})
			before := s.Clone()
			_, err := s.Prepare(AddRealServer{RealServer: tt.rs})
			var fe *FieldError
			if !errors.Is(err, tt.kind) || !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("got %v, want %v on %q", err, tt.kind, tt.field)
			}
			if !s.Equal(before) {
				t.Fatal("a rejected command changed the state")
			}
		})
	}
}

func TestNATRealServerTakesServicePortByDefault(t *testing.T) {
	s := NewState()
	mustApply(t, s, AddService{Service: webService()})
	mustApply(t, s, AddRealServer{RealServer: RealServer{Service: "web", Addr: rs4, Weight: 1}})
	if _, ok := s.RealServer(RSKey{Service: "web", Addr: rs4, Port: 80}); !ok {
		t.Fatal("real server without a port should take the service port")
	}
	// NAT may map to another port.
	mustApply(t, s, AddRealServer{RealServer: RealServer{Service: "web", Addr: rs4, Port: 8080, Weight: 1}})
	if _, err := s.Prepare(AddRealServer{RealServer: RealServer{Service: "web", Addr: rs4, Port: 8080, Weight: 1}}); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate real server: got %v", err)
	}
}

func TestEditServiceKeepsRealServersFitting(t *testing.T) {
	s := NewState()
	mustApply(t, s, AddService{Service: webService()})
	mustApply(t, s, AddRealServer{RealServer: RealServer{Service: "web", Addr: rs4, Port: 8080, Weight: 1}})
	dr := webService()
	dr.Forwarding = DR
	if _, err := s.Prepare(EditService{Service: dr}); !errors.Is(err, ErrConflict) {
		t.Fatalf("switching to DR with a remapped port must conflict, got %v", err)
	}
	v6 := webService()
	v6.VIP = vip6
	if _, err := s.Prepare(EditService{Service: v6}); !errors.Is(err, ErrConflict) {
		t.Fatalf("switching family under IPv4 real servers must conflict, got %v", err)
	}
	rr := webService()
	rr.Scheduler = "rr"
	mustApply(t, s, EditService{Service: rr})
	if got, _ := s.Service("web"); got.Scheduler != "rr" || len(s.RealServers("web")) != 1 {
		t.Fatalf("edit lost settings or real servers: %+v", got)
	}
}

func TestRemoveServiceRemovesItsRealServers(t *testing.T) {
	s := NewState()
	mustApply(t, s, AddService{Service: webService()})
	mustApply(t, s, AddRealServer{RealServer: RealServer{Service: "web", Addr: rs4, Weight: 1}})
	mustApply(t, s, RemoveService{Name: "web"})
	if len(s.AllRealServers()) != 0 {
		t.Fatal("real servers of a removed service remain")
	}
}

func TestAgentAndOperatorRealServersDoNotOverwriteEachOther(t *testing.T) {
	s := NewState()
	mustApply(t, s, AddService{Service: webService()})
	mustApply(t, s, AddRealServer{RealServer: RealServer{Service: "web", Addr: rs4, Weight: 1}})
	agent := RealServer{Service: "web", Addr: rs4, Weight: 5, Origin: AgentOrigin("rs1")}
	if _, err := s.Prepare(UpsertAgentRS{RealServer: agent}); !errors.Is(err, ErrConflict) {
		t.Fatalf("agent overwriting an operator real server: got %v", err)
	}
	if _, err := s.Prepare(UpsertAgentRS{RealServer: RealServer{Service: "web", Addr: rs4, Port: 81, Weight: 1}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("upsert without agent origin: got %v", err)
	}
	agent.Port = 8080
	mustApply(t, s, UpsertAgentRS{RealServer: agent})
	agent.Weight = 7
	mustApply(t, s, UpsertAgentRS{RealServer: agent})
	if got, _ := s.RealServer(agent.Key()); got.Weight != 7 || got.Origin != "agent:rs1" {
		t.Fatalf("upsert did not update: %+v", got)
	}
	// An operator edit is refused: the registrar owns the entry and would undo it.
	drain := agent
	drain.Origin, drain.Admin = "", Draining
	if _, err := s.Prepare(EditRealServer{RealServer: drain}); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "agent:rs1") {
		t.Fatalf("operator edit of an agent's real server: got %v, want a conflict naming the agent", err)
	}
}

func TestBatchIsAllOrNothing(t *testing.T) {
	s := NewState()
	good := AddService{Service: webService()}
	bad := AddRealServer{RealServer: RealServer{Service: "web", Addr: rs4, Weight: 100000}}
	_, err := s.Prepare(Batch{Commands: []Command{good, bad}})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "command 2") {
		t.Fatalf("got %v, want an invalid command 2", err)
	}
	if len(s.Services()) != 0 {
		t.Fatal("a rejected batch left a service behind")
	}
	// Applying an unprepared bad batch straight from the log is rejected just the same.
	entry, err := Encode(Batch{Commands: []Command{mustPrepare(t, s, good), bad}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(entry); !errors.Is(err, ErrInvalid) || len(s.Services()) != 0 || s.Version() != 0 {
		t.Fatalf("apply of a bad batch: err %v, services %d", err, len(s.Services()))
	}
}

func mustPrepare(t *testing.T, s *State, c Command) Command {
	t.Helper()
	p, err := s.Prepare(c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestClusterIDIsSetOnce(t *testing.T) {
	s := NewState()
	mustApply(t, s, SetClusterID{ID: "lb1"})
	mustApply(t, s, SetClusterID{ID: "lb1"})
	if _, err := s.Prepare(SetClusterID{ID: "lb2"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("renaming the cluster: got %v", err)
	}
}

func TestDirectors(t *testing.T) {
	s := NewState()
	d := Director{ID: "d1", RaftAddr: "10.0.0.1:7000", APIAddr: "10.0.0.1:7080"}
	mustApply(t, s, RegisterDirector{Director: d})
	if got, ok := s.Director("d1"); !ok || got != d {
		t.Fatalf("director not recorded: %+v", got)
	}
	if _, err := s.Prepare(RegisterDirector{Director: Director{ID: "d2", RaftAddr: "nope", APIAddr: "10.0.0.2:7080"}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad raft address: got %v", err)
	}
	mustApply(t, s, RemoveDirector{ID: "d1"})
	if len(s.Directors()) != 0 {
		t.Fatal("director not removed")
	}
}

func TestEditRealServerKeepsHealthVerdict(t *testing.T) {
	s := NewState()
	mustApply(t, s, AddService{Service: webService()})
	rs := RealServer{Service: "web", Addr: rs4, Weight: 1}
	mustApply(t, s, AddRealServer{RealServer: rs})
	mustApply(t, s, SetHealth{Key: RSKey{Service: "web", Addr: rs4, Port: 80}, Health: HealthDown})
	rs.Weight = 9
	mustApply(t, s, EditRealServer{RealServer: rs})
	if got, _ := s.RealServer(RSKey{Service: "web", Addr: rs4, Port: 80}); got.Health != HealthDown || got.Weight != 9 {
		t.Fatalf("edit put a down server back in rotation or lost the weight: %+v", got)
	}
}
