package director

import (
	"fmt"
	"log/slog"

	"github.com/vishvananda/netns"

	"github.com/raftlvs/raftlvs/director/ipvs"
	"github.com/raftlvs/raftlvs/director/syncd"
	"github.com/raftlvs/raftlvs/director/vip"
)

// NewLinuxKernel opens IPVS, links, ARP/NA sockets, the VIP fence (as fence says) and
// (if syncEnabled) the sync daemon control of the current network namespace. It fails
// with an error wrapping ipvs.ErrNoIPVS on a kernel without IPVS: a director there must
// run as a witness.
func NewLinuxKernel(syncEnabled bool, fence vip.FenceMode, log *slog.Logger) (*Kernel, error) {
	table, err := ipvs.NewLinux("")
	if err != nil {
		return nil, fmt.Errorf("open IPVS: %w", err)
	}
	k, err := NewLinuxVIPKernel(fence, log)
	if err != nil {
		table.Close()
		return nil, err
	}
	k.IPVS, k.Stats, k.Conns = table, table, ProcConnections{}
	closeVIP := k.close
	var daemons *syncd.Client
	if syncEnabled {
		daemons, err = syncd.Open("")
		if err != nil {
			table.Close()
			closeVIP()
			return nil, fmt.Errorf("open sync daemon control: %w", err)
		}
		k.Sync = daemons
	}
	k.close = func() {
		table.Close()
		closeVIP()
		if daemons != nil {
			daemons.Close()
		}
	}
	return k, nil
}

// NewLinuxVIPKernel opens what a VIP-only director needs of the current network
// namespace: links, ARP/NA sockets and the VIP fence, no IPVS, so it runs on a kernel
// without IPVS.
func NewLinuxVIPKernel(fence vip.FenceMode, log *slog.Logger) (*Kernel, error) {
	links, err := vip.NewNetlinkLinks(netns.None())
	if err != nil {
		return nil, fmt.Errorf("open links: %w", err)
	}
	announcer := vip.NewPacketAnnouncer(netns.None())
	k := &Kernel{Links: links, Announcer: announcer}
	var nft *vip.NftFence
	if fence != vip.FenceOff {
		// A kernel without nf_tables runs unfenced, as before the fence: one warning, not
		// a director that cannot start.
		nft, err = openNftFence(netns.None(), log)
		if err != nil {
			cmpLogger(log).Warn("VIP fence unavailable: running without it, so a frozen leader's kernel keeps answering ARP/NDP for its VIPs until it resumes and steps down (--vip-fence=off silences this)",
				"err", err)
		} else {
			cmpLogger(log).Info("VIP fence on: the kernel answers ARP/NDP for a VIP only within the leader lease of a verified leadership", "nftables_table", vip.FenceTable)
			k.Fence = nft
		}
	}
	k.close = func() {
		if nft != nil {
			if err := nft.Close(); err != nil {
				cmpLogger(log).Warn("close the VIP fence", "err", err)
			}
		}
		links.Close()
		announcer.Close()
	}
	return k, nil
}

// openNftFence opens the fence; a test replaces it, so as never to touch the nftables
// of the namespace it runs in.
var openNftFence = vip.NewNftFence

func cmpLogger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}
