//go:build linux

package chaos

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/internal/netlab"
)

// The segment: directors at .1, .2, …, the client at .250, the VIP at .100.
var (
	subnet   = netip.MustParsePrefix("10.99.7.0/24")
	clientIP = netip.MustParsePrefix("10.99.7.250/24")
	VIP      = netip.MustParsePrefix("10.99.7.100/24")
)

const (
	raftPort   = "7000"
	apiPort    = "7080"
	gossipPort = "7946"
	gossipKey  = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	clientName = "c"
)

// directorIP is the address of the i-th director (0-based).
func directorIP(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 99, 7, byte(i + 1)}) }

// procState is what the nemesis has done to a director's process.
type procState int

const (
	running procState = iota
	frozen            // SIGSTOP
	down              // killed or stopped, not started again yet
)

// Cluster is the directors, each a real process in a namespace of its own, and the
// client's namespace, on one bridge.
type Cluster struct {
	Lab        *netlab.Lab
	IDs        []string
	DiskVictim string // the director whose data dir is a small tmpfs the nemesis fills
	bin        string
	dir        string
	start      time.Time
	logf       func(format string, args ...any)

	mu    sync.Mutex
	procs map[string]*netlab.Proc
	state map[string]procState
	lives map[string]int
}

// NewCluster builds the segment for n directors and mounts the disk victim's tmpfs.
// Nothing runs yet.
func NewCluster(bin, dir string, n int, logf func(string, ...any)) (_ *Cluster, err error) {
	specs := []netlab.HostSpec{{Name: clientName, Addr: clientIP}}
	c := &Cluster{bin: bin, dir: dir, logf: logf, start: time.Now(),
		procs: map[string]*netlab.Proc{}, state: map[string]procState{}, lives: map[string]int{}}
	for i := range n {
		id := fmt.Sprintf("d%d", i+1)
		c.IDs = append(c.IDs, id)
		c.state[id] = down
		specs = append(specs, netlab.HostSpec{Name: id, Addr: netip.PrefixFrom(directorIP(i), subnet.Bits())})
	}
	c.DiskVictim = c.IDs[n-1]
	if c.Lab, err = netlab.New(labPrefix(), specs...); err != nil {
		return nil, err
	}
	if err := mountDataDisk(c.dataDir(c.DiskVictim)); err != nil {
		c.Lab.Close()
		return nil, err
	}
	return c, nil
}

// Close kills every director and removes the namespaces and the tmpfs.
func (c *Cluster) Close() error {
	return errors.Join(c.Lab.Close(), unmountDataDisk(c.dataDir(c.DiskVictim)))
}

func (c *Cluster) index(id string) int { return slices.Index(c.IDs, id) }

// IP is a director's address.
func (c *Cluster) IP(id string) netip.Addr { return directorIP(c.index(id)) }

func (c *Cluster) apiAddr(id string) string { return c.IP(id).String() + ":" + apiPort }

func (c *Cluster) dataDir(id string) string { return filepath.Join(c.dir, id) }

// LogPath is where a director's output goes, every life of it appended.
func (c *Cluster) LogPath(id string) string { return filepath.Join(c.dir, id+".log") }

// since is the run's clock, in the harness's log lines and the directors' logs alike.
func (c *Cluster) since() time.Duration { return time.Since(c.start).Round(time.Millisecond) }

// Mark writes a line into the harness's log and every director's, so that each log
// names the faults as they happen.
func (c *Cluster) Mark(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	c.logf("+%v %s", c.since(), line)
	for _, id := range c.IDs {
		if f, err := os.OpenFile(c.LogPath(id), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
			fmt.Fprintf(f, "=== chaos +%v: %s\n", c.since(), line)
			f.Close()
		}
	}
}

// Start runs a director (again): the first bootstraps, the others join through the
// rest. Both flags stay on across restarts, as an operator's unit file would have them.
func (c *Cluster) Start(id string) error {
	ip := c.IP(id).String()
	args := []string{"director", "--id", id, "--data-dir", c.dataDir(id),
		"--raft-addr", ip + ":" + raftPort, "--api-addr", ip + ":" + apiPort, "--gossip-addr", ip + ":" + gossipPort,
		"--vip-interface", "eth0", "--vip-only", "--insecure", "--raft-timing", "default", "--log-level", "info"}
	if id == c.IDs[0] {
		args = append(args, "--bootstrap")
	} else {
		var join []string
		for _, other := range c.IDs {
			if other != id {
				join = append(join, c.apiAddr(other))
			}
		}
		args = append(args, "--join", strings.Join(join, ","))
	}
	p, err := c.Lab.Host(id).Start(c.LogPath(id), []string{"RAFTLVS_GOSSIP_KEY=" + gossipKey}, c.bin, args...)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.procs[id], c.state[id] = p, running
	c.lives[id]++
	c.mu.Unlock()
	return nil
}

// State is what the nemesis has done to id.
func (c *Cluster) State(id string) procState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state[id]
}

// Running lists the directors that run and are not frozen.
func (c *Cluster) Running() []string {
	var out []string
	for _, id := range c.IDs {
		if c.State(id) == running {
			out = append(out, id)
		}
	}
	return out
}

func (c *Cluster) proc(id string) *netlab.Proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.procs[id]
}

func (c *Cluster) setState(id string, s procState) {
	c.mu.Lock()
	c.state[id] = s
	c.mu.Unlock()
}

// Kill is kill -9 of a director's process; its kernel keeps whatever the process put
// on its interface, the VIP included, until it starts again.
func (c *Cluster) Kill(id string) {
	if p := c.proc(id); p != nil {
		p.Kill()
	}
	c.setState(id, down)
}

// Crash is a machine that fails: its cable pulled, then kill -9, so that its kernel
// answers for nothing.
func (c *Cluster) Crash(id string) error {
	err := c.Lab.Host(id).LinkDown()
	c.Kill(id)
	return err
}

// Reboot brings a crashed machine back: a rebooted kernel holds no VIP, and its cable
// is plugged in again before the director starts.
func (c *Cluster) Reboot(id string) error {
	h := c.Lab.Host(id)
	if ok, _ := h.Holds(VIP.Addr()); ok {
		if err := h.DelAddr(netip.PrefixFrom(VIP.Addr(), 32)); err != nil {
			return fmt.Errorf("reboot %s: %w", id, err)
		}
	}
	if err := h.LinkUp(); err != nil {
		return fmt.Errorf("reboot %s: %w", id, err)
	}
	return c.Start(id)
}

// Stop is SIGTERM, a planned stop, waited for up to limit before kill -9.
func (c *Cluster) Stop(id string, limit time.Duration) error {
	p := c.proc(id)
	if p == nil {
		return nil
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	defer c.setState(id, down)
	if !p.Wait(limit) {
		// SIGQUIT first: the Go runtime writes every goroutine's stack into the log.
		p.Signal(syscall.SIGQUIT)
		p.Wait(5 * time.Second)
		p.Kill()
		return fmt.Errorf("%s still ran %v after SIGTERM: killed (its goroutines are in %s)", id, limit, c.LogPath(id))
	}
	return nil
}

// Freeze stops a director's process (SIGSTOP); Thaw lets it go on.
func (c *Cluster) Freeze(id string) error {
	if err := c.proc(id).Signal(syscall.SIGSTOP); err != nil {
		return err
	}
	c.setState(id, frozen)
	return nil
}

func (c *Cluster) Thaw(id string) error {
	if err := c.proc(id).Signal(syscall.SIGCONT); err != nil {
		return err
	}
	c.setState(id, running)
	return nil
}

// Exited lists the directors whose process ended by itself (the nemesis did not stop
// it): a director must not exit on a fault.
func (c *Cluster) Exited() []string {
	var out []string
	for _, id := range c.IDs {
		if p := c.proc(id); p != nil && c.State(id) != down {
			select {
			case <-p.Done():
				out = append(out, id)
			default:
			}
		}
	}
	return out
}

// httpClient dials from the client's namespace; no keep-alive, so that a dial error
// always means that the request never left.
func (c *Cluster) httpClient(perTry time.Duration) *http.Client {
	h := c.Lab.Host(clientName)
	return &http.Client{Timeout: perTry, Transport: &http.Transport{DialContext: h.DialContext, DisableKeepAlives: true}}
}

// Client is an API client for the directors ids, tried in that order.
func (c *Cluster) Client(timeout time.Duration, ids ...string) *api.Client {
	addrs := make([]string, len(ids))
	for i, id := range ids {
		addrs[i] = c.apiAddr(id)
	}
	cl := api.NewClient(addrs...)
	cl.HTTP = c.httpClient(timeout)
	cl.Timeout = timeout
	return cl
}

// Status asks one director for its status, quickly.
func (c *Cluster) Status(id string) (*api.StatusResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return c.Client(time.Second, id).Status(ctx, false)
}

// Leader is the director that says it leads, among those running, "" for none; of two
// (one cut off, within its lease) the one with the higher term.
func (c *Cluster) Leader() string {
	leader, term := "", uint64(0)
	for _, id := range c.Running() {
		st, err := c.Status(id)
		if err == nil && st.Node.State == "Leader" && st.Node.Term >= term {
			leader, term = id, st.Node.Term
		}
	}
	return leader
}

// WaitLeader waits up to limit for a leader.
func (c *Cluster) WaitLeader(limit time.Duration) string {
	for deadline := time.Now().Add(limit); ; time.Sleep(100 * time.Millisecond) {
		if l := c.Leader(); l != "" || time.Now().After(deadline) {
			return l
		}
	}
}

// Healthy says whether every running director serves and names the same leader, which
// is one of them.
func (c *Cluster) Healthy() bool {
	leader := ""
	for _, id := range c.Running() {
		st, err := c.Status(id)
		if err != nil || !st.Node.Serving || st.Node.LeaderID == "" || (leader != "" && st.Node.LeaderID != leader) {
			return false
		}
		leader = st.Node.LeaderID
	}
	return leader != "" && c.State(leader) == running
}

// WaitHealthy waits up to limit for Healthy and says how long it took.
func (c *Cluster) WaitHealthy(limit time.Duration) (time.Duration, bool) {
	start := time.Now()
	for deadline := start.Add(limit); ; time.Sleep(100 * time.Millisecond) {
		if c.Healthy() {
			return time.Since(start), true
		}
		if time.Now().After(deadline) {
			return time.Since(start), false
		}
	}
}

// Holders lists the directors whose eth0 carries the VIP.
func (c *Cluster) Holders() []string { return c.Lab.Holders(VIP.Addr(), c.IDs...) }
