//go:build linux

package chaos

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/mdlayher/arp"

	"github.com/raftlvs/raftlvs/internal/netlab"
)

// arpPeriod is how often the watcher asks who has the VIP: the resolution of the
// double-owner figure.
const arpPeriod = 20 * time.Millisecond

// ARPWatch asks, from the client's namespace, every arpPeriod who has the VIP (an ARP
// request, as a client that has no entry would send) and records which directors
// answered each round: the kernel of every director whose interface carries the VIP
// answers, whether or not its process still leads — the split brain a client meets.
type ARPWatch struct {
	client *arp.Client
	byMAC  map[string]int // a director's MAC → its index in ids
	ids    []string
	since  func() time.Duration
	done   chan struct{}

	mu     sync.Mutex
	rounds []Round
}

// Round is one ARP request and the directors that answered it (a bit per index).
type Round struct {
	At      time.Duration
	Answers uint16
	Foreign int // answers from a MAC that is no director's
}

// WatchARP starts the watcher on host.
func WatchARP(host *netlab.Host, lab *netlab.Lab, ids []string, since func() time.Duration) (*ARPWatch, error) {
	client, err := host.ARPClient()
	if err != nil {
		return nil, err
	}
	w := &ARPWatch{client: client, byMAC: map[string]int{}, ids: ids, since: since, done: make(chan struct{})}
	for i, id := range ids {
		w.byMAC[lab.Host(id).MAC.String()] = i
	}
	go w.run(host.Addr.Addr())
	return w, nil
}

// Stop ends the watcher.
func (w *ARPWatch) Stop() {
	select {
	case <-w.done:
	default:
		close(w.done)
		w.client.Close()
	}
}

func (w *ARPWatch) run(self netip.Addr) {
	for {
		select {
		case <-w.done:
			return
		default:
		}
		r := Round{At: w.since()}
		end := time.Now().Add(arpPeriod)
		if err := w.client.Request(VIP.Addr()); err != nil {
			time.Sleep(time.Until(end))
			continue
		}
		for {
			if err := w.client.SetReadDeadline(end); err != nil {
				return
			}
			p, _, err := w.client.Read()
			if err != nil {
				var ne net.Error
				if errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
					break
				}
				return // closed
			}
			// Answers to this watcher, not gratuitous announcements.
			if p.Operation != arp.OperationReply || p.SenderIP != VIP.Addr() || p.TargetIP != self {
				continue
			}
			if i, ok := w.byMAC[p.SenderHardwareAddr.String()]; ok {
				r.Answers |= 1 << i
			} else {
				r.Foreign++
			}
		}
		w.mu.Lock()
		w.rounds = append(w.rounds, r)
		w.mu.Unlock()
	}
}

// Rounds is what the watcher recorded so far.
func (w *ARPWatch) Rounds() []Round {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.rounds)
}

// Answerers names the directors that answered the last few rounds.
func (w *ARPWatch) Answerers(last int) []string {
	rs := w.Rounds()
	var bits uint16
	for _, r := range rs[max(0, len(rs)-last):] {
		bits |= r.Answers
	}
	return names(bits, w.ids)
}

func names(bits uint16, ids []string) []string {
	var out []string
	for i, id := range ids {
		if bits&(1<<i) != 0 {
			out = append(out, id)
		}
	}
	return out
}
