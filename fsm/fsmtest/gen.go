// Package fsmtest generates random fsm commands for property tests: mostly valid, some
// not, over a small space of names and addresses so that commands collide (duplicates,
// removals of what exists, edits, transactions staged and committed over each other).
// Tests of the fsm and of its consumers (the IPVS reconciler) share it.
package fsmtest

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// Gen produces commands from a seeded source: equal seeds, equal commands. It remembers
// the real servers and the chunks it made, so that edits, health verdicts and commits
// often name something that exists (it does not know which of its commands succeeded).
type Gen struct {
	r       *rand.Rand
	servers []fsm.RealServer // real servers added lately
	chunks  map[string]int   // chunks staged per transaction since its last commit or abort
	at      time.Time        // the leader's clock in the last chunk
}

// New returns a generator for seed.
func New(seed uint64) *Gen {
	return &Gen{r: rand.New(rand.NewPCG(seed, 7)), chunks: map[string]int{}, at: time.Unix(1e9, 0).UTC()}
}

// IntN is the generator's own randomness, for a test's choices between commands.
func (g *Gen) IntN(n int) int { return g.r.IntN(n) }

func (g *Gen) addr(fam fsm.Family) netip.Addr {
	if fam == fsm.IPv6 {
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(1 + g.r.IntN(6))})
	}
	return netip.AddrFrom4([4]byte{10, 0, 0, byte(1 + g.r.IntN(6))})
}

func (g *Gen) name() string { return fmt.Sprintf("svc%d", g.r.IntN(5)) }

func (g *Gen) family() fsm.Family { return []fsm.Family{fsm.IPv4, fsm.IPv6}[g.r.IntN(2)] }

func (g *Gen) forwarding() fsm.Forwarding {
	return []fsm.Forwarding{fsm.NAT, fsm.DR, fsm.TUN}[g.r.IntN(3)]
}

// Service is a service over the generator's names and addresses.
func (g *Gen) Service() fsm.Service {
	fam := g.family()
	s := fsm.Service{
		Name:        g.name(),
		Protocol:    []fsm.Protocol{fsm.TCP, fsm.UDP, fsm.SCTP}[g.r.IntN(3)],
		VIP:         g.addr(fam),
		Port:        uint16(80 + g.r.IntN(3)),
		Scheduler:   fsm.Schedulers[g.r.IntN(len(fsm.Schedulers))],
		Forwarding:  g.forwarding(),
		Persistence: uint32(g.r.IntN(2) * 300),
	}
	if g.r.IntN(5) == 0 {
		s.Protocol, s.VIP, s.Port, s.FWMark, s.Family = "", netip.Addr{}, 0, uint32(1+g.r.IntN(3)), fam
	}
	if s.Scheduler == "sh" && g.r.IntN(2) == 0 {
		s.SchedFlags = []string{fsm.FlagSHPort}
	}
	if g.r.IntN(6) == 0 {
		// A quorum, with hysteresis now and then, and a sorry server: the reconciler's
		// desired table depends on the weights of all the service's real servers at
		// once, and the state remembers whether the quorum held.
		s.Quorum, s.SorryServer = 1+g.r.IntN(4), netip.AddrPortFrom(g.addr(fam), 80)
		if s.Quorum > 1 && g.r.IntN(2) == 0 {
			s.Hysteresis = 1
		}
		s.QuorumDown = g.r.IntN(2) == 0 // a command's word on it is ignored
	}
	if g.r.IntN(6) == 0 {
		s.OnDown = fsm.DownInhibit
	}
	return s
}

// RealServer is a real server of one of the generator's services: half the time one it
// made before, with other settings.
func (g *Gen) RealServer() fsm.RealServer {
	if len(g.servers) > 0 && g.r.IntN(2) == 0 {
		rs := g.servers[g.r.IntN(len(g.servers))]
		rs.Weight, rs.Admin = g.r.IntN(5), ""
		return rs
	}
	rs := g.newRealServer()
	g.servers = append(g.servers, rs)
	if len(g.servers) > 8 {
		g.servers = g.servers[1:]
	}
	return rs
}

func (g *Gen) newRealServer() fsm.RealServer {
	rs := fsm.RealServer{
		Service: g.name(),
		Addr:    g.addr(g.family()),
		Port:    uint16(80 + g.r.IntN(2)),
		Weight:  g.r.IntN(5),
	}
	if g.r.IntN(3) == 0 {
		rs.Forwarding = g.forwarding()
	}
	if g.r.IntN(4) == 0 {
		rs.Origin = fsm.AgentOrigin(fmt.Sprintf("a%d", g.r.IntN(2)))
	}
	if g.r.IntN(5) == 0 {
		rs.Admin = fsm.Draining
	}
	return rs
}

func (g *Gen) health() fsm.Health { return []fsm.Health{fsm.HealthUp, fsm.HealthDown}[g.r.IntN(2)] }

// Command is a command of any type, a batch now and then.
func (g *Gen) Command() fsm.Command { return g.command(0) }

// vip declares or forgets one of the generator's addresses (some of them services'
// VIPs), now and then with a length, an interface or a label; /30 makes some of them a
// network or broadcast address, which Prepare refuses and a raw entry must replay the
// same all the same.
func (g *Gen) vip() fsm.Command {
	fam := g.family()
	a := g.addr(fam)
	bits := a.BitLen()
	switch n := g.r.IntN(6); {
	case n == 0 && fam == fsm.IPv6:
		bits = 64
	case n == 0:
		bits = 24
	case n == 1 && fam == fsm.IPv4:
		bits = 30
	}
	if g.r.IntN(3) == 0 {
		return fsm.RemoveVIP{Addr: a}
	}
	v := fsm.VIP{Prefix: netip.PrefixFrom(a, bits)}
	if g.r.IntN(2) == 0 {
		v.Interface = []string{"eth0", "bond0.42"}[g.r.IntN(2)]
	}
	if g.r.IntN(3) == 0 {
		v.Name = "api"
	}
	return fsm.AddVIP{VIP: v}
}

// trust makes a token, CA or certificate command over a few ids and serials.
func (g *Gen) trust() fsm.Command {
	at := time.Unix(int64(1e9+g.r.IntN(1e6)), 0).UTC()
	id := []string{"aaaaaaaa", "bbbbbbbb", "cccccccc"}[g.r.IntN(3)]
	serial := []string{"1f", "2e", "3d", "4c"}[g.r.IntN(4)]
	switch g.r.IntN(6) {
	case 0:
		role := []string{fsm.RoleDirector, fsm.RoleAgent, fsm.RoleOperator}[g.r.IntN(3)]
		t := fsm.Token{ID: id, Role: role, Hash: "sha256:" + strings.Repeat("ab", 32), Created: at, Expires: at.Add(time.Hour),
			SingleUse: role == fsm.RoleDirector}
		if role == fsm.RoleOperator {
			t.Access = []string{"read", "operate", "admin"}[g.r.IntN(3)]
		}
		if role == fsm.RoleAgent && g.r.IntN(2) == 0 {
			t.Networks = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}
		}
		return fsm.PutToken{Token: t}
	case 1:
		return fsm.RevokeToken{ID: id, At: at, Used: g.r.IntN(2) == 0}
	case 2:
		return fsm.DeleteToken{ID: id}
	case 3:
		return fsm.SetCA{CA: fsm.ClusterCA{CertPEM: fmt.Sprintf("-----BEGIN CERTIFICATE-----\n%d\n", g.r.IntN(3)),
			KeyPEM: "-----BEGIN PRIVATE KEY-----\nx\n"}}
	case 4:
		return fsm.RecordCertificate{Certificate: fsm.Certificate{Serial: serial, Role: []string{fsm.RoleDirector, fsm.RoleAgent}[g.r.IntN(2)],
			ID: fmt.Sprintf("a%d", g.r.IntN(2)), IPs: []netip.Addr{g.addr(fsm.IPv4)}, NotAfter: at.Add(time.Hour)}}
	default:
		return fsm.RevokeCertificate{Serial: serial, At: at}
	}
}

func (g *Gen) command(depth int) fsm.Command {
	if g.r.IntN(8) == 0 {
		return g.trust()
	}
	if g.r.IntN(10) == 0 {
		return g.vip()
	}
	switch n := g.r.IntN(13); {
	case n < 3:
		return fsm.AddService{Service: g.Service()}
	case n == 3:
		return fsm.EditService{Service: g.Service()}
	case n == 4:
		return fsm.RemoveService{Name: g.name()}
	case n < 7:
		return fsm.AddRealServer{RealServer: g.RealServer()}
	case n == 7:
		return fsm.UpsertAgentRS{RealServer: g.RealServer()}
	case n == 8 && g.r.IntN(2) == 0:
		rs := g.RealServer()
		return fsm.SetHealth{Key: rs.Key(), Health: []fsm.Health{fsm.HealthUp, fsm.HealthDown, "sick"}[g.r.IntN(3)], Reason: "HTTP 503",
			Since: time.Unix(int64(g.r.IntN(1e9)), 0)}
	case n == 8:
		var u fsm.SetHealths
		for range 1 + g.r.IntN(3) {
			rs := g.RealServer()
			u.Updates = append(u.Updates, fsm.SetHealth{Key: rs.Key(), Health: g.health()})
		}
		return u
	case n == 9:
		rs := g.RealServer()
		return fsm.RemoveRealServer{Key: rs.Key()}
	case n == 10 && depth == 0:
		return g.staged()
	case n == 11 && depth == 0:
		rs := g.RealServer()
		return fsm.EditRealServer{RealServer: rs}
	default:
		if depth > 0 {
			return fsm.RemoveService{Name: g.name()}
		}
		b := fsm.Batch{}
		if g.r.IntN(3) == 0 {
			b.Commands = g.serviceWithServers()
			return b
		}
		for range 1 + g.r.IntN(4) {
			b.Commands = append(b.Commands, g.command(depth+1))
		}
		return b
	}
}

// staged is a command of a staged transaction, over two transaction ids and up to four
// chunks, mostly staged in order and committed whole.
func (g *Gen) staged() fsm.Command {
	tx := fmt.Sprintf("tx%d", g.r.IntN(2))
	switch n := g.r.IntN(8); {
	case n < 5 && g.chunks[tx] < 4:
		seq := g.chunks[tx]
		if g.r.IntN(5) == 0 {
			seq = g.r.IntN(4) // out of order, or a duplicate
		} else {
			g.chunks[tx]++
		}
		// Minutes apart, now and then hours: an earlier transaction expires.
		at := g.at.Add(time.Duration(g.r.IntN(60)) * time.Second)
		if g.r.IntN(10) == 0 {
			at = at.Add(time.Hour)
		}
		g.at = at
		c := fsm.StageChunk{Tx: tx, Seq: seq, At: at}
		if g.r.IntN(3) == 0 {
			for range 1 + g.r.IntN(3) {
				c.Commands = append(c.Commands, g.operator())
			}
		} else {
			c.Commands = g.serviceWithServers()
		}
		return c
	case n < 7:
		chunks := g.chunks[tx]
		if chunks == 0 || g.r.IntN(4) == 0 {
			chunks = 1 + g.r.IntN(3)
		}
		g.chunks[tx] = 0
		return fsm.CommitStaged{Tx: tx, Chunks: chunks}
	default:
		g.chunks[tx] = 0
		return fsm.AbortStaged{Tx: tx}
	}
}

// serviceWithServers adds or redefines a service and gives it real servers of its family
// that take their port from it, as a restore does.
func (g *Gen) serviceWithServers() []fsm.Command {
	svc := g.Service()
	var cmds []fsm.Command
	switch g.r.IntN(3) {
	case 0:
		cmds = append(cmds, fsm.AddService{Service: svc})
	case 1:
		cmds = append(cmds, fsm.RemoveService{Name: svc.Name}, fsm.AddService{Service: svc})
	default:
		cmds = append(cmds, fsm.EditService{Service: svc})
	}
	fam := svc.Family
	if fam == "" {
		fam = fsm.FamilyOf(svc.VIP)
	}
	for range 1 + g.r.IntN(3) {
		cmds = append(cmds, fsm.AddRealServer{RealServer: fsm.RealServer{Service: svc.Name, Addr: g.addr(fam), Weight: g.r.IntN(5)}})
	}
	return cmds
}

// operator is one of the commands an operator stages.
func (g *Gen) operator() fsm.Command {
	switch g.r.IntN(6) {
	case 0:
		return fsm.AddService{Service: g.Service()}
	case 1:
		return fsm.EditService{Service: g.Service()}
	case 2:
		return fsm.RemoveService{Name: g.name()}
	case 3:
		rs := g.RealServer()
		rs.Origin = ""
		return fsm.EditRealServer{RealServer: rs}
	case 4:
		rs := g.RealServer()
		return fsm.RemoveRealServer{Key: rs.Key()}
	}
	rs := g.RealServer()
	rs.Origin = ""
	return fsm.AddRealServer{RealServer: rs}
}
