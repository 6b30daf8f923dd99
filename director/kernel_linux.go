package director

import (
	"fmt"

	"github.com/vishvananda/netns"

	"github.com/raftlvs/raftlvs/director/ipvs"
	"github.com/raftlvs/raftlvs/director/syncd"
	"github.com/raftlvs/raftlvs/director/vip"
)

// NewLinuxKernel opens IPVS, links, ARP/NA sockets and (if syncEnabled) the sync daemon
// control of the current network namespace. It fails with an error wrapping
// ipvs.ErrNoIPVS on a kernel without IPVS: a director there must run as a witness.
func NewLinuxKernel(syncEnabled bool) (*Kernel, error) {
	table, err := ipvs.NewLinux("")
	if err != nil {
		return nil, fmt.Errorf("open IPVS: %w", err)
	}
	links, err := vip.NewNetlinkLinks(netns.None())
	if err != nil {
		table.Close()
		return nil, fmt.Errorf("open links: %w", err)
	}
	announcer := vip.NewPacketAnnouncer(netns.None())
	k := &Kernel{IPVS: table, Stats: table, Links: links, Announcer: announcer, Conns: ProcConnections{}}
	var daemons *syncd.Client
	if syncEnabled {
		daemons, err = syncd.Open("")
		if err != nil {
			table.Close()
			links.Close()
			announcer.Close()
			return nil, fmt.Errorf("open sync daemon control: %w", err)
		}
		k.Sync = daemons
	}
	k.close = func() {
		table.Close()
		links.Close()
		announcer.Close()
		if daemons != nil {
			daemons.Close()
		}
	}
	return k, nil
}

// NewLinuxVIPKernel opens what a VIP-only director needs of the current network
// namespace: links and ARP/NA sockets, no IPVS, so it runs on a kernel without IPVS.
func NewLinuxVIPKernel() (*Kernel, error) {
	links, err := vip.NewNetlinkLinks(netns.None())
	if err != nil {
		return nil, fmt.Errorf("open links: %w", err)
	}
	announcer := vip.NewPacketAnnouncer(netns.None())
	return &Kernel{Links: links, Announcer: announcer, close: func() {
		links.Close()
		announcer.Close()
	}}, nil
}
