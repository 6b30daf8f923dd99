//go:build !linux

package realserver

import (
	"errors"
	"fmt"
	"runtime"
)

// ErrUnsupportedOS: the agent configures a Linux kernel (lo VIPs, ARP sysctls, tunl0).
var ErrUnsupportedOS = errors.New("not supported on this OS")

// NetlinkHost exists on Linux only.
type NetlinkHost struct{ Host }

// NewNetlinkHost fails off Linux.
func NewNetlinkHost() (*NetlinkHost, error) {
	return nil, fmt.Errorf("configure this host on %s: %w", runtime.GOOS, ErrUnsupportedOS)
}

// Close does nothing.
func (*NetlinkHost) Close() {}
