//go:build linux

package ipvs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"

	mobyipvs "github.com/moby/ipvs"
	"github.com/vishvananda/netns"
)

// withNamedNetns creates a named network namespace for the test and deletes it at the end.
func withNamedNetns(t testing.TB) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	name := fmt.Sprintf("ipvs-test-%d", os.Getpid())
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.NewNamed(name) // also switches this thread into it
	if err != nil {
		t.Fatalf("create netns %s: %v", name, err)
	}
	ns.Close()
	if err := netns.Set(orig); err != nil {
		t.Fatalf("return to the original netns: %v", err)
	}
	t.Cleanup(func() {
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("delete netns %s: %v", name, err)
		}
	})
	return "/var/run/netns/" + name
}

func TestNewLinuxWithoutIPVSReturnsErrNoIPVS(t *testing.T) {
	path := withNamedNetns(t)
	l, err := NewLinux(path)
	if err == nil {
		l.Close()
		t.Skip("this kernel has IPVS; the lab tests cover it")
	}
	if !errors.Is(err, ErrNoIPVS) {
		t.Fatalf("NewLinux(%s) = %v, want an error wrapping ErrNoIPVS", path, err)
	}
}

func TestNewLinuxInMissingNetnsFails(t *testing.T) {
	if _, err := NewLinux("/var/run/netns/does-not-exist-raftlvs"); err == nil || errors.Is(err, ErrNoIPVS) {
		t.Fatalf("NewLinux on a missing netns = %v, want an open error", err)
	}
}

func TestIPv4NetmaskReachesTheKernelInNetworkOrder(t *testing.T) {
	for _, tt := range []struct {
		prefix int
		wire   []byte // what the kernel must find in IPVS_SVC_ATTR_NETMASK
	}{
		{32, []byte{255, 255, 255, 255}},
		{24, []byte{255, 255, 255, 0}},
		{16, []byte{255, 255, 0, 0}},
		{1, []byte{128, 0, 0, 0}},
	} {
		mask := PersistNetmask(FamilyIPv4, tt.prefix)
		if got := netmaskBytes(FamilyIPv4, mask); !bytes.Equal(got, tt.wire) {
			t.Errorf("/%d: attribute bytes %v, want %v", tt.prefix, got, tt.wire)
		}
		// The kernel answers with the same bytes; moby/ipvs reads them in host order.
		if back := kernelNetmask(FamilyIPv4, binary.NativeEndian.Uint32(tt.wire)); back != mask {
			t.Errorf("/%d: read back %#x, want %#x", tt.prefix, back, mask)
		}
	}
	if got := netmaskBytes(FamilyIPv6, 128); binary.NativeEndian.Uint32(got) != 128 {
		t.Errorf("IPv6 netmask bytes %v, want prefix length 128", got)
	}
}

func TestMobyConversionRoundTrips(t *testing.T) {
	svcs := []Service{
		{Family: FamilyIPv4, Protocol: ProtocolUDP, Address: webVIP, Port: 53, Scheduler: "sh", Flags: FlagPersistent | FlagSched1, Timeout: 60, Netmask: 0xffffff00},
		{Family: FamilyIPv6, Protocol: ProtocolSCTP, Address: dnsVIP, Port: 9, Scheduler: "mh", Netmask: 64},
		{Family: FamilyIPv4, FWMark: 7, Scheduler: "rr", Netmask: 0xffffffff},
	}
	for _, s := range svcs {
		m := toMobyService(s)
		if s.FWMark != 0 && m.Address != nil {
			t.Errorf("%s: fwmark service sent with address %v", s.Key(), m.Address)
		}
		if back := fromMobyService(m); !back.Equal(s) {
			t.Errorf("%s: round trip %+v, want %+v", s.Key(), back, s)
		}
	}
	for _, f := range []Forwarding{ForwardMasq, ForwardTunnel, ForwardRoute} {
		m := &mobyipvs.Destination{Address: net.ParseIP("10.0.0.1"), Port: 80, Weight: 3, ConnectionFlags: uint32(f), UpperThreshold: 9, LowerThreshold: 2}
		want := Destination{Address: netip.MustParseAddr("10.0.0.1"), Port: 80, Weight: 3, Forwarding: f, UpperThreshold: 9, LowerThreshold: 2}
		if got := fromMobyDestination(m); !got.Equal(want) {
			t.Errorf("%s: read %+v, want %+v", f, got, want)
		}
	}
	if mobyipvs.ConnectionFlagTunnel != uint32(ForwardTunnel) || mobyipvs.ConnectionFlagDirectRoute != uint32(ForwardRoute) {
		t.Error("forwarding constants disagree with moby/ipvs")
	}
}
