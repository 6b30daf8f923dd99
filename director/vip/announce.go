//go:build linux

package vip

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"github.com/vishvananda/netns"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// writeTimeout bounds a send on a congested or carrier-less interface.
const writeTimeout = time.Second

// PacketAnnouncer is the Announcer over raw sockets: mdlayher/arp for gratuitous ARP and
// mdlayher/ndp for unsolicited neighbour advertisements.
//
// The ARP socket is kept per interface index and reopened after a failed send or when
// the interface is re-created: closing an AF_PACKET socket waits for an RCU grace period
// (about 13 ms here, see BenchmarkAnnounce), which a socket per announcement would pay
// for every VIP at every refresh, under the owner's lock. The NDP socket is bound to an
// address that may come and go, and is cheap, so it is opened per announcement.
type PacketAnnouncer struct {
	ns netns.NsHandle

	mu  sync.Mutex
	arp map[int]*arp.Client // by interface index
}

// NewPacketAnnouncer returns an Announcer whose sockets are opened in ns, or in the
// caller's network namespace when ns is not open (netns.None()). The caller keeps ns open
// while the announcer is in use, and calls Close when done.
func NewPacketAnnouncer(ns netns.NsHandle) *PacketAnnouncer {
	return &PacketAnnouncer{ns: ns, arp: make(map[int]*arp.Client)}
}

// Close closes the cached sockets.
func (a *PacketAnnouncer) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	for index, c := range a.arp {
		errs = append(errs, c.Close())
		delete(a.arp, index)
	}
	return errors.Join(errs...)
}

// GratuitousARP implements Announcer. It sends the request form (sender IP = target IP,
// target MAC zero, as the kernel's own arp_notify does) and the reply form (target MAC =
// sender MAC, RFC 5944 §4.6: the kernel's arp_is_garp only treats a reply as gratuitous,
// and so ignores its 1 s locktime, when the two are equal), both to ff:ff:ff:ff:ff:ff;
// some devices heed only one of the two forms.
//
// mdlayher/arp refuses to open on an interface without an IPv4 address. The owner adds
// the VIP before announcing it, so an interface that otherwise has only IPv6 works; if
// the VIP was removed in between, this fails and the owner's next step re-adds it.
func (a *PacketAnnouncer) GratuitousARP(ifi Interface, addr netip.Addr) error {
	if !addr.Is4() {
		return fmt.Errorf("gratuitous ARP for non-IPv4 %s", addr)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	client := a.arp[ifi.Index]
	if client == nil {
		err := inNamespace(a.ns, func() error {
			var err error
			client, err = openARP(ifi)
			return err
		})
		if err != nil {
			return err
		}
		a.arp[ifi.Index] = client
	}
	if err := sendGARP(client, ifi, addr); err != nil {
		// The interface may have gone or changed: start afresh next time.
		client.Close()
		delete(a.arp, ifi.Index)
		return err
	}
	return nil
}

// dropAll is a socket filter that accepts no packet: the ARP socket only sends, and
// should not queue a copy of every ARP frame on the segment.
var dropAll = []bpf.RawInstruction{{Op: unix.BPF_RET | unix.BPF_K, K: 0}}

func openARP(ifi Interface) (*arp.Client, error) {
	conn, err := packet.Listen(ifi.netInterface(), packet.Raw, int(ethernet.EtherTypeARP), &packet.Config{Filter: dropAll})
	if err != nil {
		return nil, fmt.Errorf("open ARP socket: %w", err)
	}
	// arp.Dial would leak this socket when the interface has no IPv4 address.
	client, err := arp.New(ifi.netInterface(), conn)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("ARP client: %w", err)
	}
	return client, nil
}

func sendGARP(client *arp.Client, ifi Interface, addr netip.Addr) error {
	if err := client.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return err
	}
	zero := make(net.HardwareAddr, len(ifi.HardwareAddr))
	for _, form := range []struct {
		op       arp.Operation
		targetHW net.HardwareAddr
	}{
		{arp.OperationRequest, zero},
		{arp.OperationReply, ifi.HardwareAddr},
	} {
		p, err := arp.NewPacket(form.op, ifi.HardwareAddr, addr, form.targetHW, addr)
		if err != nil {
			return fmt.Errorf("build ARP %s: %w", form.op, err)
		}
		if err := client.WriteTo(p, ethernet.Broadcast); err != nil {
			return fmt.Errorf("send ARP %s: %w", form.op, err)
		}
	}
	return nil
}

// UnsolicitedNA implements Announcer. The NA's source is the interface's link-local
// address, as RFC 4861 expects; ndp needs it non-tentative, so on an interface whose
// link-local is still in DAD (or that has none) the VIP itself, added without DAD, is the
// source instead, which RFC 4861 §7.2.6 equally allows.
func (a *PacketAnnouncer) UnsolicitedNA(ifi Interface, addr netip.Addr) error {
	if !addr.Is6() {
		return fmt.Errorf("neighbour advertisement for non-IPv6 %s", addr)
	}
	return inNamespace(a.ns, func() error { return sendNA(ifi, addr) })
}

func sendNA(ifi Interface, addr netip.Addr) error {
	// ndp names the interface as the IPv6 zone of both the bound and the destination
	// address. Go resolves zone names through a process-wide cache that is refreshed at
	// most once a minute and knows nothing of namespaces, so "eth0" can resolve to another
	// namespace's eth0 or to a re-created interface's old index (sendmsg then fails with
	// EINVAL). A zone that names no interface is read as a decimal index: pass that.
	nifi := ifi.netInterface()
	nifi.Name = strconv.Itoa(ifi.Index)
	conn, _, errLL := ndp.Listen(nifi, ndp.LinkLocal)
	if errLL != nil {
		var errVIP error
		conn, _, errVIP = ndp.Listen(nifi, ndp.Addr(addr.String()))
		if errVIP != nil {
			return fmt.Errorf("open NDP socket: from the link-local address: %w; from the VIP: %w", errLL, errVIP)
		}
	}
	defer conn.Close()
	if err := conn.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return err
	}
	na := &ndp.NeighborAdvertisement{
		Override:      true,
		Solicited:     false,
		TargetAddress: addr,
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: ifi.HardwareAddr}},
	}
	if err := conn.WriteTo(na, nil, netip.IPv6LinkLocalAllNodes()); err != nil {
		return fmt.Errorf("send neighbour advertisement: %w", err)
	}
	return nil
}

// inNamespace runs fn on an OS thread switched into ns (or directly when ns is not open).
// Sockets opened by fn stay in ns for their lifetime. fn runs on a goroutine of its own,
// so that if the thread cannot be switched back it is retired with that goroutine
// (locked threads die with their goroutine) rather than left to run other goroutines in
// the wrong namespace.
func inNamespace(ns netns.NsHandle, fn func() error) error {
	if !ns.IsOpen() {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("current network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter network namespace %s: %w", ns, err)
			return
		}
		err = fn()
		if errBack := netns.Set(orig); errBack != nil {
			// Stay locked: the thread exits with this goroutine.
			errc <- errors.Join(err, fmt.Errorf("return to network namespace %s: %w", orig, errBack))
			return
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}
