//go:build linux

package chaos

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/raftlvs/raftlvs/internal/netlab"
)

var (
	flagLong     = flag.Bool("chaos.long", false, "the long run (make chaos): 5 directors, every fault kind, 100+ leader kills")
	flagSeed     = flag.Uint64("chaos.seed", 0, "seed of the nemesis and the clients (0: 1 for the short run, the clock for the long)")
	flagDuration = flag.Duration("chaos.duration", 0, "how long faults go on at least (0: the mode's)")
	flagKills    = flag.Int("chaos.kills", -1, "leader kills a run makes at least (-1: the mode's)")
	flagDir      = flag.String("chaos.dir", "", "keep logs and data dirs here (default: a temporary dir, kept only when the run fails)")
	flagRace     = flag.Bool("chaos.race", false, "build the directors with the race detector")
)

// mode is a run's shape.
type mode struct {
	name      string
	directors int
	clients   int
	keys      int
	pace      time.Duration
	plan      Plan
	checkTime time.Duration // porcupine's bound
}

// The short run is part of make test: every fault kind at least once, on a fixed seed,
// in about two minutes of faults. The long run (make chaos) has five directors, so that
// a split has two sides of more than one, and kills the leader a hundred times.
var (
	shortMode = mode{name: "short", directors: 3, clients: 4, keys: 8, pace: 20 * time.Millisecond, checkTime: 2 * time.Minute,
		plan: Plan{
			Weights: map[FaultKind]int{KillLeader: 3, KillFollower: 1, Restart: 1, IsolateLeader: 1, Split: 1, OneWay: 1, Freeze: 1, DiskFull: 1},
			Hold:    [2]time.Duration{300 * time.Millisecond, 2 * time.Second},
			Pause:   [2]time.Duration{300 * time.Millisecond, time.Second},
			// Faults stop after 90 s once every kind ran, and by 150 s in any case.
			Duration: 90 * time.Second, MinEach: 1, MaxDuration: 150 * time.Second,
		}}
	longMode = mode{name: "long", directors: 5, clients: 6, keys: 16, pace: 50 * time.Millisecond, checkTime: 20 * time.Minute,
		plan: Plan{
			Weights:  map[FaultKind]int{KillLeader: 6, KillFollower: 1, Restart: 1, IsolateLeader: 1, Split: 1, OneWay: 1, Freeze: 1, DiskFull: 1},
			Hold:     [2]time.Duration{200 * time.Millisecond, 4 * time.Second},
			Pause:    [2]time.Duration{500 * time.Millisecond, 2 * time.Second},
			Duration: 15 * time.Minute, MinLeaderKills: 100, MinEach: 8, MaxDuration: 45 * time.Minute,
		}}
)

// convergeLimit is the bound, after the last fault, for every director to agree: far
// more than an election and a catch-up take, so that only a wedge misses it.
const convergeLimit = 60 * time.Second

func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("the chaos harness runs real directors for minutes")
	}
	if err := netlab.Available(); err != nil {
		t.Skip(err)
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("the chaos harness partitions with nftables: no nft command")
	}
	m := shortMode
	switch os.Getenv("RAFTLVS_CHAOS") {
	case "long":
		m = longMode
	case "short":
	default:
		if !*flagLong && *flagSeed == 0 {
			t.Skip("the chaos harness runs on its own: make chaos-short (RAFTLVS_CHAOS=short), make chaos (long), or -args -chaos.seed=N")
		}
	}
	if *flagLong {
		m = longMode
	}
	seed := *flagSeed
	if seed == 0 {
		seed = 1
		if m.name == "long" {
			seed = uint64(time.Now().UnixNano()) % 1_000_000
		}
	}
	if *flagDuration > 0 {
		m.plan.Duration = *flagDuration
		m.plan.MaxDuration = max(m.plan.MaxDuration, *flagDuration+time.Minute)
	}
	if *flagKills >= 0 {
		m.plan.MinLeaderKills = *flagKills
	}
	t.Logf("chaos %s run, seed %d (replay: %s)", m.name, seed, replay(m, seed))
	if removed, err := Sweep(); err != nil || len(removed) > 0 {
		t.Logf("swept what earlier runs left: %v (%v)", removed, err)
	}

	dir := runDir(t, seed)
	bin := buildDirector(t, dir)
	c, err := NewCluster(bin, dir, m.directors, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("tear the lab down: %v", err)
		}
		if t.Failed() {
			t.Logf("FAILED: replay with %s; logs and data dirs in %s", replay(m, seed), dir)
			for _, id := range c.IDs {
				if b, err := os.ReadFile(c.LogPath(id)); err == nil {
					t.Logf("---- %s (last lines)\n%s", id, tail(string(b), 30))
				}
			}
		} else if *flagDir == "" {
			os.RemoveAll(dir)
		}
	})
	startCluster(t, c)

	arp, err := WatchARP(c.Lab.Host(clientName), c.Lab, c.IDs, c.since)
	if err != nil {
		t.Fatal(err)
	}
	defer arp.Stop()
	w := NewWorkload(c, seed, m.clients, m.keys, m.pace)
	if err := w.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}

	// The faults, with the clients going on throughout; every deadline is bounded.
	nem := NewNemesis(c, m.plan, seed)
	wctx, stopClients := context.WithCancel(context.Background())
	clientsDone := make(chan struct{})
	go func() { defer close(clientsDone); w.Run(wctx) }()
	nctx, cancel := context.WithTimeout(context.Background(), m.plan.MaxDuration+2*time.Minute)
	faultsFrom := c.since()
	nem.Run(nctx)
	cancel()
	faultTime := c.since() - faultsFrom
	stopClients()
	<-clientsDone
	if err := nem.HealAll(); err != nil {
		t.Errorf("heal: %v", err)
	}

	conv, err := c.Converge(convergeLimit, arp)
	if err != nil {
		t.Errorf("after the faults: %v", err)
	}
	arp.Stop()

	history := w.History()
	r := Report{Mode: m.name, Seed: seed, Directors: m.directors, Timing: "default", FaultTime: faultTime,
		Faults: nem.Faults, Counts: nem.Counts, ARP: arp.Rounds(), Exits: nem.Exits}
	if conv != nil {
		r.Converged = conv.Took
		r.Ledger = checkLedger(history, conv.States)
		history = append(history, conv.FinalReads(c.IDs, m.keys)...)
	}
	r.Tally = tally(history)
	r.Lin = checkLinearizable(history, m.checkTime, dir)
	for _, id := range c.IDs {
		crashes, err := Crashes(c.LogPath(id))
		if err != nil {
			t.Errorf("scan %s's log: %v", id, err)
		}
		r.Crashes = append(r.Crashes, crashes...)
	}
	report := r.Lines()
	for _, line := range report {
		t.Log(line)
	}
	os.WriteFile(filepath.Join(dir, "report.txt"), []byte(strings.Join(report, "\n")+"\n"), 0o644)

	// The hard invariants: each holds whenever the system is correct, whatever the
	// nemesis did and however loaded the machine is. Timings are figures, not checks.
	for _, err := range nem.Errs {
		t.Errorf("nemesis: %v", err)
	}
	if r.Lin.Result == porcupine.Illegal {
		t.Errorf("the history is not linearizable: %s", r.Lin.Rendered)
	}
	for id, lost := range r.Ledger.Lost {
		t.Errorf("%s lacks %d acknowledged ledger adds: %v", id, len(lost), lost)
	}
	for id, ph := range r.Ledger.Phantoms {
		t.Errorf("%s holds %d ledger adds that were answered as not logged: %v", id, len(ph), ph)
	}
	if r.Tally.ExistsAnswers > 0 {
		t.Errorf("%d ledger adds met their own entry: a retry after a 503 found the write applied", r.Tally.ExistsAnswers)
	}
	for _, line := range r.Crashes {
		t.Errorf("panic: %s", line)
	}
	for _, id := range r.Exits {
		t.Errorf("%s exited by itself", id)
	}
}

// startCluster starts the first director, then the others joining it, and waits for
// all to serve under one leader with every voter in.
func startCluster(t *testing.T, c *Cluster) {
	t.Helper()
	if err := c.Start(c.IDs[0]); err != nil {
		t.Fatal(err)
	}
	if c.WaitLeader(60*time.Second) == "" {
		t.Fatalf("%s did not lead within 60 s", c.IDs[0])
	}
	for _, id := range c.IDs[1:] {
		if err := c.Start(id); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		if st, err := c.Status(c.IDs[0]); err == nil && len(st.Node.Voters) == len(c.IDs) && c.Healthy() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d voters serving under one leader: not within 90 s", len(c.IDs))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// buildDirector builds raftlvs once for the run (go build, the Makefile's tags from
// GOFLAGS).
func buildDirector(t *testing.T, dir string) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(dir, "raftlvs")
	args := []string{"build", "-o", bin}
	if *flagRace {
		args = append(args, "-race")
	}
	cmd := exec.Command(gobin, append(args, "github.com/raftlvs/raftlvs/cmd/raftlvs")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build raftlvs: %v\n%s", err, out)
	}
	return bin
}

func runDir(t *testing.T, seed uint64) string {
	t.Helper()
	dir := *flagDir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", fmt.Sprintf("raftlvs-chaos-%d-", seed)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func replay(m mode, seed uint64) string {
	return fmt.Sprintf("RAFTLVS_CHAOS=%s go test ./chaos -run TestChaos -count=1 -v -args -chaos.seed=%d", m.name, seed)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
