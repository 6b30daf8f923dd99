package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

// commandGen produces random commands, mostly valid, some not, over a small address space
// so that commands collide (duplicates, removals of what exists, edits).
type commandGen struct{ r *rand.Rand }

func (g commandGen) addr(fam Family) netip.Addr {
	if fam == IPv6 {
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(1 + g.r.IntN(6))})
	}
	return netip.AddrFrom4([4]byte{10, 0, 0, byte(1 + g.r.IntN(6))})
}

func (g commandGen) name() string { return fmt.Sprintf("svc%d", g.r.IntN(5)) }

func (g commandGen) service() Service {
	fam := []Family{IPv4, IPv6}[g.r.IntN(2)]
	s := Service{
		Name:        g.name(),
		Protocol:    []Protocol{TCP, UDP, SCTP}[g.r.IntN(3)],
		VIP:         g.addr(fam),
		Port:        uint16(80 + g.r.IntN(3)),
		Scheduler:   Schedulers[g.r.IntN(len(Schedulers))],
		Forwarding:  []Forwarding{NAT, DR, TUN}[g.r.IntN(3)],
		Persistence: uint32(g.r.IntN(2) * 300),
	}
	if g.r.IntN(5) == 0 {
		s.Protocol, s.VIP, s.Port, s.FWMark, s.Family = "", netip.Addr{}, 0, uint32(1+g.r.IntN(3)), fam
	}
	if s.Scheduler == "sh" && g.r.IntN(2) == 0 {
		s.SchedFlags = []string{FlagSHPort}
	}
	return s
}

func (g commandGen) realServer() RealServer {
	fam := []Family{IPv4, IPv6}[g.r.IntN(2)]
	rs := RealServer{
		Service: g.name(),
		Addr:    g.addr(fam),
		Port:    uint16(80 + g.r.IntN(2)),
		Weight:  g.r.IntN(5),
	}
	if g.r.IntN(3) == 0 {
		rs.Forwarding = []Forwarding{NAT, DR, TUN}[g.r.IntN(3)]
	}
	if g.r.IntN(4) == 0 {
		rs.Origin = AgentOrigin(fmt.Sprintf("a%d", g.r.IntN(2)))
	}
	return rs
}

// vip declares one of the generator's addresses, some of them service VIPs too, now and
// then with a length, an interface or a name; a few are refused at Prepare (a network or
// broadcast address), and the raw ones must replay the same all the same.
func (g commandGen) vip() VIP {
	fam := []Family{IPv4, IPv6}[g.r.IntN(2)]
	a := g.addr(fam)
	bits := a.BitLen()
	switch n := g.r.IntN(6); {
	case n == 0 && fam == IPv6:
		bits = 64
	case n == 0:
		bits = 24
	case n == 1 && fam == IPv4:
		bits = 30 // 10.0.0.3/30 and 10.0.0.4/30 are a network's broadcast and network address
	}
	v := VIP{Prefix: netip.PrefixFrom(a, bits)}
	if g.r.IntN(2) == 0 {
		v.Interface = []string{"eth0", "bond0.42"}[g.r.IntN(2)]
	}
	if g.r.IntN(3) == 0 {
		v.Name = "api"
	}
	return v
}

func (g commandGen) command(depth int) Command {
	switch n := g.r.IntN(13); {
	case n == 11:
		return AddVIP{VIP: g.vip()}
	case n == 12:
		return RemoveVIP{Addr: g.vip().Addr()}
	case n < 3:
		return AddService{Service: g.service()}
	case n == 3:
		return EditService{Service: g.service()}
	case n == 4:
		return RemoveService{Name: g.name()}
	case n < 7:
		return AddRealServer{RealServer: g.realServer()}
	case n == 7:
		return UpsertAgentRS{RealServer: g.realServer()}
	case n == 8 && g.r.IntN(2) == 0:
		rs := g.realServer()
		return SetHealth{Key: rs.Key(), Health: []Health{HealthUp, HealthDown, "sick"}[g.r.IntN(3)], Reason: "HTTP 503",
			Since: time.Unix(int64(g.r.IntN(1e9)), 0)}
	case n == 8:
		var u SetHealths
		for range 1 + g.r.IntN(3) {
			rs := g.realServer()
			u.Updates = append(u.Updates, SetHealth{Key: rs.Key(), Health: []Health{HealthUp, HealthDown}[g.r.IntN(2)]})
		}
		return u
	case n == 9:
		rs := g.realServer()
		return RemoveRealServer{Key: rs.Key()}
	default:
		if depth > 0 {
			return RemoveService{Name: g.name()}
		}
		b := Batch{}
		for range 1 + g.r.IntN(4) {
			b.Commands = append(b.Commands, g.command(depth+1))
		}
		return b
	}
}

// TestSnapshotRestoreEqualsReplay pins down the Raft contract: a node restored from a
// snapshot taken at any point, then fed the rest of the log, ends equal to a node that
// replayed the whole log; and every replica applying the same log agrees.
func TestSnapshotRestoreEqualsReplay(t *testing.T) {
	for seed := range uint64(40) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			g := commandGen{rand.New(rand.NewPCG(seed, 7))}
			leader := NewState()
			var log [][]byte
			accepted, peakServers, peakVIPs := 0, 0, 0
			for range 150 {
				// The leader logs what it prepared, or, now and then, a raw command it
				// did not check (as a racing write would be): both must replay the same.
				c := g.command(0)
				if p, err := leader.Prepare(c); err == nil {
					c = p
				}
				entry, err := Encode(c)
				if err != nil {
					t.Fatal(err)
				}
				log = append(log, entry)
				if leader.Apply(entry) == nil {
					accepted++
				}
				peakServers = max(peakServers, len(leader.AllRealServers()))
				peakVIPs = max(peakVIPs, len(leader.DeclaredVIPs()))
			}
			cut := int(seed) * len(log) / 40
			early := NewState()
			for _, e := range log[:cut] {
				_ = early.Apply(e)
			}
			var snap bytes.Buffer
			if err := early.WriteSnapshot(&snap); err != nil {
				t.Fatal(err)
			}
			restored, err := ReadSnapshot(&snap)
			if err != nil {
				t.Fatalf("read snapshot: %v", err)
			}
			replica := NewState()
			for _, e := range log {
				_ = replica.Apply(e)
			}
			for _, e := range log[cut:] {
				_ = restored.Apply(e)
			}
			if !restored.Equal(leader) || !replica.Equal(leader) {
				t.Fatalf("states differ: leader v%d %d svcs, replica v%d, restored v%d",
					leader.Version(), len(leader.Services()), replica.Version(), restored.Version())
			}
			if accepted < 10 || peakServers == 0 || peakVIPs == 0 {
				t.Fatal("generator produced no accepted commands: the test proves nothing")
			}
		})
	}
}

func TestApplyRefusesUnknownCommands(t *testing.T) {
	tests := map[string][]byte{
		"unknown type":    {200, bodyVersion, '{', '}'},
		"unknown version": {byte(TypeAddService), 9, '{', '}'},
	}
	for name, entry := range tests {
		t.Run(name, func(t *testing.T) {
			if err := NewState().Apply(entry); !errors.Is(err, ErrUnknownCommand) {
				t.Fatalf("got %v, want ErrUnknownCommand", err)
			}
		})
	}
	if err := NewState().Apply([]byte{1}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("truncated entry: got %v", err)
	}
}

func TestSnapshotRefusesInvalidContent(t *testing.T) {
	bad := `{"format":1,"services":[{"name":"x","protocol":"tcp","vip":"10.0.0.1","port":80,"family":"ipv4","scheduler":"nope","persist_mask":32,"forwarding":"nat"}]}`
	if _, err := ReadSnapshot(bytes.NewBufferString(bad)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("got %v, want ErrInvalid", err)
	}
	if _, err := ReadSnapshot(bytes.NewBufferString(`{"format":2}`)); !errors.Is(err, ErrUnknownCommand) {
		t.Fatalf("got %v, want a refused format", err)
	}
}

// FuzzApply feeds arbitrary log entries: Apply must never panic, and an entry it accepts
// must survive a snapshot round trip.
func FuzzApply(f *testing.F) {
	for _, c := range []Command{
		AddService{Service: webService()},
		Batch{Commands: []Command{AddService{Service: webService()}, RemoveService{Name: "web"}}},
		SetHealth{Key: RSKey{Service: "web", Addr: rs4, Port: 80}, Health: HealthDown},
	} {
		e, err := Encode(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(e)
	}
	f.Fuzz(func(t *testing.T, entry []byte) {
		s := NewState()
		if err := s.Apply(entry); err != nil {
			return
		}
		var buf bytes.Buffer
		if err := s.WriteSnapshot(&buf); err != nil {
			t.Fatal(err)
		}
		r, err := ReadSnapshot(&buf)
		if err != nil {
			t.Fatalf("accepted state does not restore: %v", err)
		}
		if !r.Equal(s) {
			t.Fatal("snapshot round trip changed the state")
		}
	})
}
