//go:build linux

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The client's probe: a new TCP connection to the VIP every probeEvery, each given
// probeTimeout to complete its handshake (on a veth segment it takes well under a
// millisecond; a SYN that went to a director without the VIP is never answered). It runs
// as a process of its own inside the client's namespace and prints one line per attempt:
// "<start, unix ns> <1|0>".
const (
	probeEvery   = 10 * time.Millisecond
	probeTimeout = 200 * time.Millisecond
)

func runProbe(addr string) error {
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	tick := time.NewTicker(probeEvery)
	defer tick.Stop()
	for start := range tick.C {
		go func() {
			c, err := net.DialTimeout("tcp", addr, probeTimeout)
			ok := 0
			if err == nil {
				ok = 1
				c.Close()
			}
			mu.Lock()
			fmt.Fprintf(out, "%d %d\n", start.UnixNano(), ok)
			out.Flush()
			mu.Unlock()
		}()
	}
	return nil
}

// runServer accepts connections on addr and closes them: the tiny server behind the VIP
// on each director (bound to every address, so it answers on the VIP once it is there).
func runServer(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		c.Close()
	}
}

// attempt is one probe connection.
type attempt struct {
	at time.Time
	ok bool
}

// probeLog collects the probe's attempts as they come in.
type probeLog struct {
	mu       sync.Mutex
	attempts []attempt // by arrival; sorted by start when read
	err      error
}

func (p *probeLog) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		p.mu.Lock()
		p.attempts = append(p.attempts, attempt{at: time.Unix(0, ns), ok: f[1] == "1"})
		p.mu.Unlock()
	}
	p.mu.Lock()
	p.err = fmt.Errorf("probe output ended: %v", sc.Err())
	p.mu.Unlock()
}

// since returns the attempts that started at or after t, by start time.
func (p *probeLog) since(t time.Time) []attempt {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []attempt
	for i := len(p.attempts) - 1; i >= 0 && p.attempts[i].at.After(t.Add(-time.Second)); i-- {
		if !p.attempts[i].at.Before(t) {
			out = append(out, p.attempts[i])
		}
	}
	// Attempts arrive out of order by at most probeTimeout: sort by start.
	slices.SortFunc(out, func(a, b attempt) int { return a.at.Compare(b.at) })
	return out
}

// healthy reports whether the last n attempts, all started at least probeTimeout ago so
// that their answer is in, succeeded.
func (p *probeLog) healthy(n int) bool {
	got := p.since(time.Now().Add(-time.Duration(n+30) * probeEvery))
	var done []attempt
	for _, a := range got {
		if time.Since(a.at) > probeTimeout {
			done = append(done, a)
		}
	}
	if len(done) < n {
		return false
	}
	for _, a := range done[len(done)-n:] {
		if !a.ok {
			return false
		}
	}
	return true
}

// gap is what the client saw of an event at t0: from the first attempt that failed to
// the first that succeeded after the last failure, among attempts started after t0
// (resolution probeEvery); zero if none failed. settled says the answer is final: at
// least minWait has passed and the last settleN attempts succeeded.
func gap(attempts []attempt, t0 time.Time, minWait time.Duration, settleN int) (g time.Duration, settled bool) {
	firstFail, lastFail := -1, -1
	var done []attempt
	for _, a := range attempts {
		if time.Since(a.at) > probeTimeout {
			done = append(done, a)
		}
	}
	for i, a := range done {
		if !a.ok {
			if firstFail < 0 {
				firstFail = i
			}
			lastFail = i
		}
	}
	if len(done) == 0 || time.Since(t0) < minWait || len(done)-lastFail-1 < settleN {
		return 0, false
	}
	if firstFail < 0 {
		return 0, true
	}
	return done[lastFail+1].at.Sub(done[firstFail].at), true
}
