//go:build linux

package chaos

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/raftlvs/raftlvs/internal/netlab"
)

// nftTable is the table the nemesis puts in a director's namespace (never the root's)
// to lose packets; deleting it heals.
const nftTable = "chaos"

// dropRules makes h lose every packet it would receive from in and send to out: both
// sets for a partition, one for one-way loss. Traffic with the client is never cut.
func dropRules(h *netlab.Host, in, out []netip.Addr) error {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", nftTable)
	fmt.Fprintf(&b, "  chain input { type filter hook input priority 0; policy accept;\n")
	if len(in) > 0 {
		fmt.Fprintf(&b, "    ip saddr { %s } drop\n", joinAddrs(in))
	}
	fmt.Fprintf(&b, "  }\n  chain output { type filter hook output priority 0; policy accept;\n")
	if len(out) > 0 {
		fmt.Fprintf(&b, "    ip daddr { %s } drop\n", joinAddrs(out))
	}
	fmt.Fprintf(&b, "  }\n}\n")
	file := "/dev/stdin"
	if _, err := h.ExecInput(b.String(), "nft", "-f", file); err != nil {
		return fmt.Errorf("nftables in %s: %w", h.Name, err)
	}
	return nil
}

// healRules deletes the table, if there is one.
func healRules(h *netlab.Host) error {
	out, err := h.Exec("nft", "list", "tables")
	if err != nil {
		return fmt.Errorf("nftables in %s: %w", h.Name, err)
	}
	if !strings.Contains(string(out), "inet "+nftTable) {
		return nil
	}
	if _, err := h.Exec("nft", "delete", "table", "inet", nftTable); err != nil {
		return fmt.Errorf("nftables in %s: %w", h.Name, err)
	}
	return nil
}

func joinAddrs(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}
