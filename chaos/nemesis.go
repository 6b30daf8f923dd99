//go:build linux

package chaos

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// recoverLimit bounds the wait, after each heal, for every running director to serve
// under one leader; a fault the cluster did not recover from within it is reported
// (Stuck) and the run goes on.
const recoverLimit = 30 * time.Second

// Nemesis applies a plan's faults to a cluster, one at a time, and heals each.
type Nemesis struct {
	c      *Cluster
	s      *schedule
	Faults []Fault
	Counts map[FaultKind]int
	// Exits are the directors that exited without the nemesis stopping them (each
	// started again so that the run goes on).
	Exits []string
	Errs  []error
}

func NewNemesis(c *Cluster, p Plan, seed uint64) *Nemesis {
	return &Nemesis{c: c, s: newSchedule(p, seed), Counts: map[FaultKind]int{}}
}

// Run applies faults until the plan says stop or ctx ends; each is healed before the
// next (HealAll is the safety net).
func (n *Nemesis) Run(ctx context.Context) {
	start := n.c.since()
	for i := 1; ctx.Err() == nil && !n.s.done(n.c.since()-start, n.Counts); i++ {
		kind := n.s.next(n.Counts)
		hold := n.s.within(n.s.plan.Hold)
		f := Fault{N: i, Kind: kind}
		if err := n.apply(ctx, &f, hold); err != nil {
			n.Errs = append(n.Errs, fmt.Errorf("%v: %w", f, err))
			n.c.Mark("%v: error: %v", f, err)
		}
		if f.Skipped == "" {
			n.Counts[kind]++
			took, ok := n.c.WaitHealthy(recoverLimit)
			f.Recovered, f.Stuck = took, !ok
			if !ok {
				n.c.Mark("%v: no leader served by every director %v after the heal", f, recoverLimit)
			}
		}
		n.Faults = append(n.Faults, f)
		n.restartExited()
		sleep(ctx, n.s.within(n.s.plan.Pause))
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// restartExited starts again, and records, a director that exited by itself.
func (n *Nemesis) restartExited() {
	for _, id := range n.c.Exited() {
		n.Exits = append(n.Exits, id)
		n.c.Mark("%s exited by itself: starting it again", id)
		n.c.setState(id, down)
		if err := n.c.Start(id); err != nil {
			n.Errs = append(n.Errs, err)
		}
	}
}

// apply does one fault, holds it and heals it.
func (n *Nemesis) apply(ctx context.Context, f *Fault, hold time.Duration) error {
	c := n.c
	running := c.Running()
	leader := ""
	if slices.Contains([]FaultKind{KillLeader, IsolateLeader, Freeze, KillFollower, OneWay}, f.Kind) {
		leader = c.WaitLeader(5 * time.Second)
	}
	followers := slices.DeleteFunc(slices.Clone(running), func(id string) bool { return id == leader })
	begin := func(targets []string, note string) {
		f.Targets, f.Note, f.From = targets, note, c.since()
		c.Mark("%v: begin, held %v", *f, hold.Round(time.Millisecond))
	}
	end := func() {
		f.To = c.since()
		c.Mark("%v: healed", *f)
	}
	skip := func(why string) error {
		f.Skipped = why
		c.Mark("fault %d %s: skipped: %s", f.N, f.Kind, why)
		return nil
	}
	switch f.Kind {
	case KillLeader:
		if leader == "" {
			return skip("no leader")
		}
		begin([]string{leader}, "cable pulled, kill -9")
		err := c.Crash(leader)
		sleep(ctx, hold)
		end()
		return errors.Join(err, c.Reboot(leader))
	case KillFollower:
		id := n.s.pick(followers)
		if id == "" {
			return skip("no follower running")
		}
		begin([]string{id}, "kill -9")
		c.Kill(id)
		sleep(ctx, hold)
		end()
		return c.Start(id)
	case Restart:
		id := n.s.pick(running)
		if id == "" {
			return skip("no director running")
		}
		begin([]string{id}, "SIGTERM, then started again")
		err := c.Stop(id, 30*time.Second)
		end()
		return errors.Join(err, c.Start(id))
	case IsolateLeader:
		if leader == "" {
			return skip("no leader")
		}
		begin([]string{leader}, "every packet to and from the other directors lost")
		return n.partition(ctx, []string{leader}, hold, end)
	case Split:
		order := slices.Sorted(slices.Values(c.IDs))
		n.s.rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		minority := order[:max(1, (len(order)-1)/2)]
		begin(minority, "minority cut off from the majority")
		return n.partition(ctx, minority, hold, end)
	case OneWay:
		from := leader
		if from == "" || n.s.rng.IntN(2) == 0 {
			from = n.s.pick(running)
		}
		to := n.s.pick(slices.DeleteFunc(slices.Clone(c.IDs), func(id string) bool { return id == from }))
		if from == "" || to == "" {
			return skip("no director running")
		}
		begin([]string{from, to}, fmt.Sprintf("packets from %s to %s lost", from, to))
		err := dropRules(c.Lab.Host(from), nil, []netip.Addr{c.IP(to)})
		sleep(ctx, hold)
		end()
		return errors.Join(err, healRules(c.Lab.Host(from)))
	case Freeze:
		id := leader
		if id == "" || n.s.rng.IntN(4) == 0 {
			id = n.s.pick(running)
		}
		if id == "" {
			return skip("no director running")
		}
		begin([]string{id}, "SIGSTOP")
		err := c.Freeze(id)
		sleep(ctx, hold)
		end()
		return errors.Join(err, c.Thaw(id))
	case DiskFull:
		return n.diskFull(ctx, f, hold, begin, end, skip)
	}
	return fmt.Errorf("unknown fault kind %q", f.Kind)
}

// partition cuts the directors in group off from all the others, holds, and heals.
func (n *Nemesis) partition(ctx context.Context, group []string, hold time.Duration, end func()) error {
	var others []netip.Addr
	for _, id := range n.c.IDs {
		if !slices.Contains(group, id) {
			others = append(others, n.c.IP(id))
		}
	}
	var errs []error
	for _, id := range group {
		errs = append(errs, dropRules(n.c.Lab.Host(id), others, others))
	}
	sleep(ctx, hold)
	end()
	for _, id := range group {
		errs = append(errs, healRules(n.c.Lab.Host(id)))
	}
	return errors.Join(errs...)
}

// diskFull fills the disk victim's data dir; half the time it first hands it
// leadership, so that a leader meets a full disk as often as a follower does.
func (n *Nemesis) diskFull(ctx context.Context, f *Fault, hold time.Duration, begin func([]string, string), end func(), skip func(string) error) error {
	c, id := n.c, n.c.DiskVictim
	if c.State(id) != running {
		return skip(id + " is not running")
	}
	note := "data dir's disk filled"
	if n.s.rng.IntN(2) == 0 && c.Leader() != id {
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := c.Client(5*time.Second, id).TransferLeadership(tctx, id)
		cancel()
		note = fmt.Sprintf("leadership handed to it first (%v), then its data dir's disk filled", errString(err))
	}
	begin([]string{id}, note)
	wrote, err := fillDisk(c.dataDir(id))
	c.Mark("%v: %d bytes written to fill it", *f, wrote)
	sleep(ctx, hold)
	end()
	return errors.Join(err, freeDisk(c.dataDir(id)))
}

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// HealAll undoes whatever may still be in force: thaws, removes every nftables table,
// frees the disk, reboots and starts every director that is down.
func (n *Nemesis) HealAll() error {
	c := n.c
	var errs []error
	for _, id := range c.IDs {
		if c.State(id) == frozen {
			errs = append(errs, c.Thaw(id))
		}
		errs = append(errs, healRules(c.Lab.Host(id)))
	}
	errs = append(errs, freeDisk(c.dataDir(c.DiskVictim)))
	for _, id := range c.IDs {
		if c.State(id) == down {
			errs = append(errs, c.Reboot(id))
		}
	}
	c.Mark("every fault healed")
	return errors.Join(errs...)
}
