//go:build !linux

package director

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"

	"github.com/raftlvs/raftlvs/director/vip"
)

// ErrUnsupportedOS: IPVS, VIP ownership and the sync daemons are Linux's; the operator
// commands build everywhere, a director runs on Linux only.
var ErrUnsupportedOS = errors.New("not supported on this OS")

// NewLinuxKernel fails off Linux.
func NewLinuxKernel(bool, vip.FenceMode, *slog.Logger) (*Kernel, error) {
	return nil, fmt.Errorf("open the kernel's IPVS on %s: %w", runtime.GOOS, ErrUnsupportedOS)
}

// NewLinuxVIPKernel fails off Linux.
func NewLinuxVIPKernel(vip.FenceMode, *slog.Logger) (*Kernel, error) {
	return nil, fmt.Errorf("open the kernel's links on %s: %w", runtime.GOOS, ErrUnsupportedOS)
}
