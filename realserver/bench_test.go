//go:build linux

package realserver

import (
	"fmt"
	"net/netip"
	"testing"
)

func steadyBindings(n int) []Binding {
	out := make([]Binding, n)
	for i := range out {
		out[i] = dr(netip.AddrFrom4([4]byte{192, 0, 2, byte(100 + i)}).String())
	}
	return out
}

// BenchmarkConvergeSteadyFake is the agent's own cost of one drift check against the fake.
func BenchmarkConvergeSteadyFake(b *testing.B) {
	for _, n := range []int{1, 16} {
		b.Run(fmt.Sprintf("vips=%d", n), func(b *testing.B) {
			h := NewFakeHost("eth0")
			c, err := NewConfigurator(h, ConfiguratorConfig{Interface: "eth0", StateFile: statePath(b), Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			bs := steadyBindings(n)
			if err := c.Converge(bs); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Converge(bs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkConvergeSteadyNetns is one drift check of a DR VIP against the real kernel in
// a namespace: what the agent spends every PollInterval.
func BenchmarkConvergeSteadyNetns(b *testing.B) {
	ns := testNS(b, netip.MustParsePrefix("192.0.2.10/24"))
	host, err := NewNetlinkHostAt(ns)
	if err != nil {
		b.Fatal(err)
	}
	defer host.Close()
	c, err := NewConfigurator(host, ConfiguratorConfig{Interface: "rs0", StateFile: statePath(b), Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	bs := []Binding{dr("192.0.2.100")}
	if err := c.Converge(bs); err != nil {
		b.Fatal(err)
	}
	defer c.Undo()
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Converge(bs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadSysctlNetns is one sysctl read through a thread switched into a namespace.
func BenchmarkReadSysctlNetns(b *testing.B) {
	ns := testNS(b, netip.MustParsePrefix("192.0.2.10/24"))
	host, err := NewNetlinkHostAt(ns)
	if err != nil {
		b.Fatal(err)
	}
	defer host.Close()
	for b.Loop() {
		if _, err := host.ReadSysctl(confPath("all", "arp_ignore")); err != nil {
			b.Fatal(err)
		}
	}
}
