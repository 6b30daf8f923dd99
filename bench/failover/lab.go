//go:build linux

package main

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/raftlvs/raftlvs/internal/netlab"
)

// The topology both systems run on: three directors and a client on one bridge, the VIP
// in the directors' subnet, the tiny server on every director.
var (
	vipAddr    = netip.MustParseAddr("10.99.0.200")
	vipPrefix  = netip.PrefixFrom(vipAddr, 24)
	serverPort = 8080
	directors  = []string{"d1", "d2", "d3"}
)

func directorAddr(name string) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 99, 0, byte(name[1] - '0')})
}

// bench is one run: the lab, the probe, the tiny servers.
type bench struct {
	lab    *netlab.Lab
	dir    string // logs and data
	self   string // this binary, for the probe and the servers
	probe  *probeLog
	client *netlab.Host
}

func newBench(dir string) (*bench, error) {
	specs := []netlab.HostSpec{{Name: "c", Addr: netip.MustParsePrefix("10.99.0.100/24")}}
	for _, d := range directors {
		specs = append(specs, netlab.HostSpec{Name: d, Addr: netip.PrefixFrom(directorAddr(d), 24)})
	}
	lab, err := netlab.New("rlfo", specs...)
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		lab.Close()
		return nil, err
	}
	b := &bench{lab: lab, dir: dir, self: self, probe: &probeLog{}, client: lab.Host("c")}
	for _, d := range directors {
		if _, err := lab.Host(d).Start(filepath.Join(dir, "server-"+d+".log"), nil, self, "serve", fmt.Sprintf("0.0.0.0:%d", serverPort)); err != nil {
			lab.Close()
			return nil, err
		}
	}
	return b, nil
}

// startProbe runs the client's probe against the VIP, reading its results.
func (b *bench) startProbe() error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	p, err := b.client.StartWithStdout(w, filepath.Join(b.dir, "probe.log"), b.self, "probe", netip.AddrPortFrom(vipAddr, uint16(serverPort)).String())
	w.Close()
	if err != nil {
		r.Close()
		return err
	}
	go func() { <-p.Done(); r.Close() }()
	go b.probe.read(r)
	return nil
}

// holders lists the directors whose eth0 carries the VIP.
func (b *bench) holders() []string { return b.lab.Holders(vipAddr, directors...) }

// measure waits for the client's view of an event at t0 to settle and returns its gap.
func (b *bench) measure(t0 time.Time) (time.Duration, error) {
	const minWait, settleN, limit = 1500 * time.Millisecond, 50, 20 * time.Second
	for time.Since(t0) < limit {
		time.Sleep(50 * time.Millisecond)
		if g, ok := gap(b.probe.since(t0), t0, minWait, settleN); ok {
			return g, nil
		}
	}
	return 0, fmt.Errorf("the client did not reach the VIP steadily within %v", limit)
}

// randomPhase waits a random part of a second before an event, so that it falls at any
// point of the systems' own periods (VRRP adverts, Raft heartbeats, GARP refreshes):
// a trial started right after a settle would otherwise be phase-locked to them.
func randomPhase() { time.Sleep(rand.N(time.Second)) }

// waitFor polls cond every 50 ms for up to limit.
func waitFor(what string, limit time.Duration, cond func() bool) error {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return nil
		}
	}
	return fmt.Errorf("timed out after %v waiting for %s", limit, what)
}

// steady waits until one director holds the VIP and the client has reached it for a
// second; a VIP left on a crashed director that its own software did not remove within
// staleLimit is removed by the bench (and reported), so the next trial starts clean.
func (b *bench) steady(logf func(string, ...any)) error {
	const staleLimit = 15 * time.Second
	err := waitFor("one VIP holder", staleLimit, func() bool { return len(b.holders()) == 1 })
	if err != nil {
		logf("VIP holders %v after %v", b.holders(), staleLimit)
		return err
	}
	return waitFor("the client to reach the VIP", 20*time.Second, func() bool { return b.probe.healthy(100) })
}
