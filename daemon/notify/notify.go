// Package notify runs an operator's commands when something happens to a director, as
// keepalived's notify_master/notify_backup/notify_fault and notify_up/notify_down do:
// the director became the Raft leader, a follower, lost its leader (no quorum), or a
// real server's committed health changed. A Notifier queues events (bounded: when full,
// an event is dropped and logged, never waited for), runs the commands of each in turn
// with a time limit (the command's whole process group is killed at the limit), and logs
// what failed. Nothing here blocks its caller. The daemon decides when an event happens
// (daemon/notify.go).
package notify

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// Kind is what happened.
type Kind string

const (
	Leader   Kind = "leader"   // this director leads (its leader duties run)
	Follower Kind = "follower" // it follows a leader it is in touch with
	Fault    Kind = "fault"    // it has had no leader for a while: no quorum, or cut off
	Health   Kind = "health"   // a real server's committed health changed
)

// Event is one thing the commands are told: as arguments (Args) and environment (Env).
type Event struct {
	Kind     Kind
	Director string // this director's id
	Leader   string // the leader as this director knows it; "" none
	// Role is this director's role when the event happened (leader, follower, fault),
	// so that a health command can act on one director only.
	Role   Kind
	Reason string
	At     time.Time

	// Health events: the real server and its verdict.
	Service  string
	Addr     netip.Addr
	Port     uint16
	Health   fsm.Health
	Previous fsm.Health
}

// Args are the arguments every command of the event gets: the kind first, as keepalived's
// notify script gets its state, then
//
//	leader|follower DIRECTOR LEADER
//	fault DIRECTOR REASON
//	health SERVICE ADDR PORT up|down
func (e Event) Args() []string {
	switch e.Kind {
	case Health:
		return []string{string(e.Kind), e.Service, e.Addr.String(), strconv.Itoa(int(e.Port)), string(e.Health)}
	case Fault:
		return []string{string(e.Kind), e.Director, e.Reason}
	}
	return []string{string(e.Kind), e.Director, e.Leader}
}

// Env is the command's whole environment: a fixed PATH (not the director's environment,
// which may hold its gossip key or a token) and the event, RAFTLVS_*.
func (e Event) Env() []string {
	env := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"RAFTLVS_EVENT=" + string(e.Kind),
		"RAFTLVS_DIRECTOR=" + e.Director,
		"RAFTLVS_LEADER=" + e.Leader,
		"RAFTLVS_ROLE=" + string(e.Role),
		"RAFTLVS_REASON=" + e.Reason,
		"RAFTLVS_TIME=" + e.At.UTC().Format(time.RFC3339Nano),
	}
	if e.Kind == Health {
		env = append(env,
			"RAFTLVS_SERVICE="+e.Service,
			"RAFTLVS_RS_ADDR="+e.Addr.String(),
			"RAFTLVS_RS_PORT="+strconv.Itoa(int(e.Port)),
			"RAFTLVS_HEALTH="+string(e.Health),
			"RAFTLVS_PREVIOUS_HEALTH="+string(e.Previous))
	}
	return env
}

// Hooks are the commands (argv: a program and its first arguments; the event's come
// after them) each kind of event runs. Any runs for every event, after the kind's own.
type Hooks struct {
	Leader, Follower, Fault, Health, Any []string
}

// Empty reports whether no command is configured.
func (h Hooks) Empty() bool {
	return len(h.Leader)+len(h.Follower)+len(h.Fault)+len(h.Health)+len(h.Any) == 0
}

// For returns the commands an event of kind k runs, in order.
func (h Hooks) For(k Kind) [][]string {
	var own []string
	switch k {
	case Leader:
		own = h.Leader
	case Follower:
		own = h.Follower
	case Fault:
		own = h.Fault
	case Health:
		own = h.Health
	}
	var out [][]string
	for _, c := range [][]string{own, h.Any} {
		if len(c) > 0 {
			out = append(out, c)
		}
	}
	return out
}

// Defaults.
const (
	DefaultTimeout = 10 * time.Second
	DefaultQueue   = 256
)

// waitDelay bounds the wait for a command's output once it has exited or been killed
// (a child that kept the pipe open).
const waitDelay = 100 * time.Millisecond

// Options tune a Notifier.
type Options struct {
	Timeout time.Duration // per command (DefaultTimeout)
	Queue   int           // events waiting at most (DefaultQueue)
	Logger  *slog.Logger
}

// Notifier runs the hooks of the events it is given, one command at a time, in order. A
// director has two (role events, health events), so that a storm of health changes never
// holds up a leader event: the two may run a --notify hook at the same time.
type Notifier struct {
	hooks   Hooks
	timeout time.Duration
	log     *slog.Logger
	queue   chan Event

	mu          sync.Mutex
	dropped     uint64
	droppedTold time.Time // when a drop was last logged
	ran         uint64
	failed      uint64
}

// dropLogEvery spaces the warnings about dropped events.
const dropLogEvery = 10 * time.Second

// New returns a Notifier; Run runs its commands.
func New(hooks Hooks, opts Options) *Notifier {
	return &Notifier{
		hooks:   hooks,
		timeout: cmp.Or(opts.Timeout, DefaultTimeout),
		log:     cmp.Or(opts.Logger, slog.New(slog.DiscardHandler)),
		queue:   make(chan Event, cmp.Or(opts.Queue, DefaultQueue)),
	}
}

// Notify queues e, or drops it (and says so) when the queue is full. It never blocks.
func (n *Notifier) Notify(e Event) {
	if len(n.hooks.For(e.Kind)) == 0 {
		return
	}
	select {
	case n.queue <- e:
	default:
		// One line per dropLogEvery at most: a storm of health changes would otherwise
		// log a line per event, on every director.
		n.mu.Lock()
		n.dropped++
		dropped, now := n.dropped, time.Now()
		tell := now.Sub(n.droppedTold) >= dropLogEvery
		if tell {
			n.droppedTold = now
		}
		n.mu.Unlock()
		if tell {
			n.log.Warn("notify: queue full, events dropped (a command is slow or stuck?)", "event", e.Kind, "args", e.Args(), "dropped_total", dropped)
		}
	}
}

// Run runs the queued events' commands until ctx ends; a command running then is killed.
func (n *Notifier) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-n.queue:
			for _, c := range n.hooks.For(e.Kind) {
				n.run(ctx, c, e)
			}
		}
	}
}

// Stats counts commands run and failed, and events dropped.
func (n *Notifier) Stats() (ran, failed, dropped uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ran, n.failed, n.dropped
}

func (n *Notifier) run(ctx context.Context, argv []string, e Event) {
	ctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	args := append(append([]string(nil), argv[1:]...), e.Args()...)
	cmd := exec.CommandContext(ctx, argv[0], args...)
	cmd.Env = e.Env()
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = waitDelay
	var out limitedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	n.mu.Lock()
	n.ran++
	if err != nil {
		n.failed++
	}
	n.mu.Unlock()
	// The event's arguments only: the command line the operator configured may carry
	// credentials.
	attrs := []any{"event", e.Kind, "command", argv[0], "args", e.Args(), "took", took.Round(time.Millisecond)}
	if s := out.String(); s != "" {
		attrs = append(attrs, "output", s)
	}
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		n.log.Warn(fmt.Sprintf("notify: command killed after %v (its process group with it)", n.timeout), attrs...)
	case ctx.Err() != nil:
		n.log.Info("notify: command killed: the director is stopping", attrs...)
	case err != nil:
		n.log.Warn("notify: command failed", append(attrs, "err", err)...)
	default:
		n.log.Debug("notify: command ran", attrs...)
	}
}

// limitedBuffer keeps the first 1 KiB a command writes, for the log.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := 1024 - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(bytes.TrimSpace(b.buf.Bytes()))
}
