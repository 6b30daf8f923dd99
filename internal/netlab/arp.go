//go:build linux

package netlab

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/mdlayher/arp"
	"github.com/vishvananda/netns"
)

// WhoAnswersARP sends one ARP request for addr from h's eth0 and returns the MAC of
// every host that answered within window: the oracle of who answers for a VIP, which a
// neighbour table (the last answer wins) cannot be.
func (h *Host) WhoAnswersARP(addr netip.Addr, window time.Duration) ([]net.HardwareAddr, error) {
	client, err := h.ARPClient()
	if err != nil {
		return nil, err
	}
	defer client.Close()
	if err := client.Request(addr); err != nil {
		return nil, fmt.Errorf("ARP request for %s from %s: %w", addr, h.Name, err)
	}
	var macs []net.HardwareAddr
	deadline := time.Now().Add(window)
	for {
		if err := client.SetReadDeadline(deadline); err != nil {
			return nil, err
		}
		p, _, err := client.Read()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return macs, nil
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return macs, nil
			}
			return nil, fmt.Errorf("read ARP in %s: %w", h.Name, err)
		}
		if p.Operation == arp.OperationReply && p.SenderIP == addr &&
			!slices.ContainsFunc(macs, func(m net.HardwareAddr) bool { return m.String() == p.SenderHardwareAddr.String() }) {
			macs = append(macs, p.SenderHardwareAddr)
		}
	}
}

// ARPClient opens an ARP socket on h's eth0, inside h's namespace, for a caller that
// probes on its own schedule (the chaos harness's watcher).
func (h *Host) ARPClient() (*arp.Client, error) {
	var client *arp.Client
	err := inNamespace(h.NS, func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		client, err = arp.Dial(ifi)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ARP socket in %s: %w", h.Name, err)
	}
	return client, nil
}

// inNamespace runs fn on a thread switched into the named namespace; a socket opened
// there stays in it.
func inNamespace(name string, fn func() error) error {
	target, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", name, err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return // the locked thread exits with this goroutine
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			errc <- err
			return
		}
		err = fn()
		if errBack := netns.Set(orig); errBack != nil {
			errc <- errors.Join(err, errBack)
			return
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}

// ARPSeen is one gratuitous ARP (sender IP = target IP, either form) heard on a host.
type ARPSeen struct {
	MAC net.HardwareAddr
	At  time.Time
}

// WatchGratuitousARP records, until done is closed, every gratuitous ARP for addr that
// reaches h's eth0: who announced itself as addr, and when. The returned func reports
// what was heard so far.
func (h *Host) WatchGratuitousARP(addr netip.Addr, done <-chan struct{}) (func() []ARPSeen, error) {
	client, err := h.ARPClient()
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	var seen []ARPSeen
	go func() { <-done; client.Close() }()
	go func() {
		for {
			p, _, err := client.Read()
			if err != nil {
				return // closed
			}
			if p.SenderIP == addr && p.TargetIP == addr {
				mu.Lock()
				seen = append(seen, ARPSeen{MAC: p.SenderHardwareAddr, At: time.Now()})
				mu.Unlock()
			}
		}
	}()
	return func() []ARPSeen {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}, nil
}
