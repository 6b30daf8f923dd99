package director

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/vishvananda/netns"

	"github.com/raftlvs/raftlvs/director/vip"
)

// A kernel without nf_tables (the lab's VM, say) gets a director without a fence and one
// warning, not a director that cannot start; --vip-fence=off does not even look.
func TestAVIPKernelWithoutNFTablesRunsUnfenced(t *testing.T) {
	opened := 0
	openNftFence = func(netns.NsHandle, *slog.Logger) (*vip.NftFence, error) {
		opened++
		return nil, fmt.Errorf("%w: open nftables netlink socket: protocol not supported", vip.ErrNoFence)
	}
	t.Cleanup(func() { openNftFence = vip.NewNftFence })
	for _, tc := range []struct {
		mode     vip.FenceMode
		opens    int
		warnings int
	}{{vip.FenceAuto, 1, 1}, {vip.FenceOff, 0, 0}} {
		opened = 0
		var logs bytes.Buffer
		k, err := NewLinuxVIPKernel(tc.mode, slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatalf("%s: %v", tc.mode, err)
		}
		if k.Fence != nil {
			t.Errorf("%s: a fence without nf_tables", tc.mode)
		}
		if opened != tc.opens {
			t.Errorf("%s: the fence opened %d times, want %d", tc.mode, opened, tc.opens)
		}
		if n := strings.Count(logs.String(), "level=WARN"); n != tc.warnings {
			t.Errorf("%s: %d warnings, want %d:\n%s", tc.mode, n, tc.warnings, logs.String())
		}
		k.Close()
	}
}
