package fsm

import (
	"bytes"
	"errors"
	"net/netip"
	"slices"
	"testing"
)

func TestVIPDeclarations(t *testing.T) {
	p := netip.MustParsePrefix
	tests := []struct {
		name string
		cmd  Command
		want error // nil: prepared and applied
	}{
		{"an address with its subnet", AddVIP{VIP: VIP{Prefix: p("10.0.0.100/24"), Interface: "eth0", Name: "api"}}, nil},
		{"a host address on the default interface", AddVIP{VIP: VIP{Prefix: p("2001:db8::100/128")}}, nil},
		{"a VLAN interface", AddVIP{VIP: VIP{Prefix: p("10.0.1.10/24"), Interface: "bond0.42"}}, nil},
		{"the same address again", AddVIP{VIP: VIP{Prefix: p("10.0.0.100/32")}}, ErrExists},
		{"no address", AddVIP{VIP: VIP{}}, ErrInvalid},
		{"the subnet's network address", AddVIP{VIP: VIP{Prefix: p("10.0.2.0/24")}}, ErrInvalid},
		{"the subnet's broadcast address", AddVIP{VIP: VIP{Prefix: p("10.0.2.255/24")}}, ErrInvalid},
		{"a /31 has no broadcast address", AddVIP{VIP: VIP{Prefix: p("10.0.3.0/31")}}, nil},
		{"loopback", AddVIP{VIP: VIP{Prefix: p("127.0.0.2/32")}}, ErrInvalid},
		{"link-local", AddVIP{VIP: VIP{Prefix: p("fe80::1/64")}}, ErrInvalid},
		{"multicast", AddVIP{VIP: VIP{Prefix: p("224.0.0.18/32")}}, ErrInvalid},
		{"an IPv4-mapped address", AddVIP{VIP: VIP{Prefix: p("::ffff:10.0.0.7/128")}}, ErrInvalid},
		{"an interface name with a slash", AddVIP{VIP: VIP{Prefix: p("10.0.0.8/32"), Interface: "eth0/1"}}, ErrInvalid},
		{"an interface name too long for the kernel", AddVIP{VIP: VIP{Prefix: p("10.0.0.8/32"), Interface: "averyverylongname"}}, ErrInvalid},
		{"a bad label", AddVIP{VIP: VIP{Prefix: p("10.0.0.8/32"), Name: "-x"}}, ErrInvalid},
		{"a director's own address", AddVIP{VIP: VIP{Prefix: p("10.0.0.2/32")}}, ErrConflict},
		{"remove a declared VIP", RemoveVIP{Addr: netip.MustParseAddr("10.0.1.10")}, nil},
		{"remove one never declared", RemoveVIP{Addr: netip.MustParseAddr("10.0.9.9")}, ErrNotFound},
	}
	s := NewState()
	if err := s.Execute(RegisterDirector{Director: Director{ID: "lb2", RaftAddr: "10.0.0.2:7000", APIAddr: "10.0.0.2:7080"}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := s.Prepare(tc.cmd)
			if err == nil {
				err = s.Execute(c)
			}
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	var got []string
	for _, v := range s.DeclaredVIPs() {
		got = append(got, v.Prefix.String()+"@"+v.Interface)
	}
	want := []string{"10.0.0.100/24@eth0", "10.0.3.0/31@", "2001:db8::100/128@"}
	if !slices.Equal(got, want) {
		t.Fatalf("declared %v, want %v", got, want)
	}

	// A snapshot carries them.
	var buf bytes.Buffer
	if err := s.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	r, err := ReadSnapshot(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Equal(s) {
		t.Fatal("snapshot round trip lost the declared VIPs")
	}
}
