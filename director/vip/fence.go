package vip

import (
	"fmt"
	"net/netip"
	"time"
)

// Fence is the kernel's lease on this director's answers for its VIPs (DESIGN.md,
// Fencing): the kernel answers ARP and neighbour solicitations for a guarded address only
// while it is live, and a lease runs out by itself, so a process that is frozen stops
// answering within one lease without doing anything. NftFence is the kernel's (nftables
// set elements with timeouts), FakeFence the tests'. One Fence may serve several owners
// (one per interface): it keeps each address's lease on its own.
type Fence interface {
	// Guard puts addr under the fence, live for ttl from now (ttl <= 0: not live). Guarding
	// an address already guarded renews it.
	Guard(addr netip.Addr, ttl time.Duration) error
	// Renew makes each of addrs (guarded ones; others are ignored) live for ttl from now,
	// whatever was left of its lease; ttl <= 0 ends their leases at once.
	Renew(addrs []netip.Addr, ttl time.Duration) error
	// Unguard takes addr out of the fence; the owner calls it once addr is off the
	// interface. Unguarding an address that is not guarded is not an error.
	Unguard(addr netip.Addr) error
}

// FenceMode is the operator's choice of fence (raftlvs director --vip-fence).
type FenceMode string

const (
	// FenceAuto fences the VIPs with nftables when the kernel has nf_tables, and runs
	// without a fence (one warning) when it has not.
	FenceAuto FenceMode = "auto"
	// FenceOff never fences: the kernel answers for a VIP as long as it is on the
	// interface, a frozen process's included (the behaviour before the fence).
	FenceOff FenceMode = "off"
)

// ParseFenceMode reads a FenceMode; "" is FenceAuto.
func ParseFenceMode(s string) (FenceMode, error) {
	switch m := FenceMode(s); m {
	case "", FenceAuto:
		return FenceAuto, nil
	case FenceOff:
		return m, nil
	}
	return "", fmt.Errorf("%w: VIP fence %q: want auto or off", ErrBadConfig, s)
}
