package gossip

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// fleetConfig uses memberlist's LAN probe timings and a slower gossip round. 203 members in one process share two cores:
// with the one-second defaults (5 probes and up to 20 gossip rounds a second per member)
// the process saturates (measured: memberlist's packet queues fill and joins stall), a
// load each real host carries easily on its own but one test process cannot.
func fleetConfig() Config {
	cfg := testConfig()
	cfg.ProbeInterval, cfg.ProbeTimeout = time.Second, 500*time.Millisecond
	cfg.SuspicionMult, cfg.GossipInterval = 4, 500*time.Millisecond
	return cfg
}

// TestTwoHundredAgents joins 200 agents to a pool of 3 directors in one process, waits until every director
// lists all of them alive with their meta, then kills one agent and waits until every
// director reports it failed. Run with -v for the figures.
func TestTwoHundredAgents(t *testing.T) {
	if testing.Short() {
		t.Skip("203 members: skipped in -short")
	}
	if raceEnabled {
		// Measured: under the race detector memberlist's per-packet work (msgpack, AES)
		// is ~10× slower, 100 members already saturate two cores, probes time out and
		// healthy members are declared failed. TestManyAgents covers the pool's own code
		// under -race.
		t.Skip("203 real memberlist stacks saturate two cores under -race; run without -race")
	}
	joinFleet(t, 200, fleetConfig())
}

// TestManyAgents is the same scenario at a size the race detector can carry.
func TestManyAgents(t *testing.T) {
	joinFleet(t, 20, fleetConfig())
}

func joinFleet(t *testing.T, agents int, cfg Config) {
	const directors, joiners = 3, 8
	var ds []*Pool
	var dAddrs []string
	for i := range directors {
		d := startPool(t, cfg, director(fmt.Sprintf("d%d", i)))
		if i > 0 {
			join(t, d, ds[0])
		}
		ds = append(ds, d)
		dAddrs = append(dAddrs, d.LocalAddr().String())
	}

	start := time.Now()
	// Agents join a few at a time, as a fleet does when it comes up; each is given every
	// director address, as in production.
	pools := make([]*Pool, agents)
	errs := make(chan error, agents)
	sem := make(chan struct{}, joiners)
	var wg sync.WaitGroup
	for i := range agents {
		p := startPool(t, cfg, agent(fmt.Sprintf("agent-%03d", i), i))
		pools[i] = p
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if _, err := p.Join(dAddrs); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	joined := time.Since(start)

	for _, d := range ds {
		waitFor(t, 2*time.Minute, d.cfg.NodeName+" lists every agent", func() bool {
			return countAlive(d) == agents
		})
	}
	converged := time.Since(start)
	last := pools[agents-1]
	waitFor(t, 2*time.Minute, "an agent lists everyone", func() bool { return countAlive(last) == agents })
	gossiped := time.Since(start)
	t.Logf("%d agents + %d directors: joins done after %v; every director lists every agent after %v; the last agent lists every agent after %v",
		agents, directors, joined.Round(time.Millisecond), converged.Round(time.Millisecond), gossiped.Round(time.Millisecond))

	victim := pools[0]
	if err := victim.Shutdown(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	for _, d := range ds {
		waitFor(t, 2*time.Minute, d.cfg.NodeName+" reports the killed agent", func() bool {
			m, _ := member(d, victim.cfg.NodeName)
			return m.State == StateDead
		})
	}
	t.Logf("a killed agent was reported failed by every director after %v (probe %v, timeout %v, suspicion ×%d)",
		time.Since(killed).Round(time.Millisecond), cfg.ProbeInterval, cfg.ProbeTimeout, cfg.SuspicionMult)
	// Not asserted: on a contended machine one process running 203 members can starve a
	// few of them into a false suspicion, which memberlist then refutes. Logged instead.
	for _, d := range ds {
		if n := countAlive(d); n != agents-1 {
			t.Logf("%s lists %d agents alive instead of %d: the process starved some into a false failure", d.cfg.NodeName, n, agents-1)
		}
	}
}

func countAlive(p *Pool) int {
	n := 0
	for _, m := range p.Members() {
		if m.State == StateAlive && m.Meta.Role == RoleAgent && m.MetaErr == nil {
			n++
		}
	}
	return n
}
