package ipvsadm

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/raftlvs/raftlvs/fsm"
)

// ipvsadm's comparators subtract unsigned 32-bit values into a signed int, so values 2^31
// or more apart compare the wrong way round. A real `ipvsadm -S -n` shows it; Write must too.
func TestWriteSortsLikeIPVSAdmWithItsWrapAround(t *testing.T) {
	tests := []struct {
		name  string
		input string // any order
		want  string
	}{
		{
			name: "200.x services before 10.x",
			input: "-A -t 10.0.0.1:80 -s rr\n-A -t 250.0.0.1:80 -s rr\n-A -t 200.0.0.1:80 -s rr\n" +
				"-A -t 10.0.0.1:443 -s rr\n",
			// 200 < 250 as numbers, but both are 2^31 or more above 10, so both come first.
			want: "-A -t 200.0.0.1:80 -s rr\n-A -t 250.0.0.1:80 -s rr\n-A -t 10.0.0.1:80 -s rr\n-A -t 10.0.0.1:443 -s rr\n",
		},
		{
			name:  "addresses less than 2^31 apart keep numeric order",
			input: "-A -t 127.0.0.9:80\n-A -t 10.0.0.2:80\n-A -t 10.0.0.10:80\n",
			want:  "-A -t 10.0.0.2:80 -s wlc\n-A -t 10.0.0.10:80 -s wlc\n-A -t 127.0.0.9:80 -s wlc\n",
		},
		{
			name: "200.x real servers before 10.x",
			input: "-A -t 192.0.2.1:80 -s rr\n-a -t 192.0.2.1:80 -r 10.0.0.1 -m\n-a -t 192.0.2.1:80 -r 200.0.0.1 -m\n" +
				"-a -t 192.0.2.1:80 -r 10.0.0.1:81 -m\n",
			want: "-A -t 192.0.2.1:80 -s rr\n-a -t 192.0.2.1:80 -r 200.0.0.1:80 -m -w 1\n" +
				"-a -t 192.0.2.1:80 -r 10.0.0.1:80 -m -w 1\n-a -t 192.0.2.1:80 -r 10.0.0.1:81 -m -w 1\n",
		},
		{
			name:  "IPv6 words wrap too: fd00:: before 2001:db8::",
			input: "-A -t [2001:db8::1]:80 -s rr\n-A -t [fd00::1]:80 -s rr\n-A -t [2001:db8::2]:80 -s rr\n",
			want:  "-A -t [fd00::1]:80 -s rr\n-A -t [2001:db8::1]:80 -s rr\n-A -t [2001:db8::2]:80 -s rr\n",
		},
		{
			name:  "IPv6 later words wrap: 2001:db8::8000:1:0:1 before 2001:db8::1",
			input: "-A -t [2001:db8::1]:80 -s rr\n-A -t [2001:db8:0:0:8000:1:0:1]:80 -s rr\n",
			want:  "-A -t [2001:db8::8000:1:0:1]:80 -s rr\n-A -t [2001:db8::1]:80 -s rr\n",
		},
		{
			name:  "family, then protocol tcp udp sctp, then fwmark",
			input: "-A -f 1 -s rr\n-A --sctp-service 10.0.0.1:80 -s rr\n-A -u [2001:db8::1]:53 -s rr\n-A -u 10.0.0.1:53 -s rr\n-A -t [2001:db8::1]:80 -s rr\n-A -t 10.0.0.9:80 -s rr\n",
			want: "-A -t 10.0.0.9:80 -s rr\n-A -u 10.0.0.1:53 -s rr\n-A --sctp-service 10.0.0.1:80 -s rr\n" +
				"-A -t [2001:db8::1]:80 -s rr\n-A -u [2001:db8::1]:53 -s rr\n-A -f 1 -s rr\n",
		},
		{
			name:  "fwmarks by mark then family",
			input: "-A -f 20 -6 -s rr\n-A -f 3 -s rr\n-A -f 20 -s rr\n-A -f 3 -6 -s rr\n",
			want:  "-A -f 3 -s rr\n-A -f 3 -6 -s rr\n-A -f 20 -s rr\n-A -f 20 -6 -s rr\n",
		},
		{
			name: "a fwmark 2^31+1 or more apart from 0 sorts before the address services",
			// ipvsadm prints such marks with %d, negative.
			input: "-A -t 10.0.0.1:80 -s rr\n-A -f 3000000000 -s rr\n-A -f 5 -s rr\n",
			want:  "-A -f -1294967296 -s rr\n-A -t 10.0.0.1:80 -s rr\n-A -f 5 -s rr\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules, err := Parse(strings.NewReader(tt.input))
			if err != nil {
				t.Fatal(err)
			}
			if got := writeString(t, rules); got != tt.want {
				t.Errorf("Write:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

// On sets that wrap all the way round the address space ipvsadm's order is not defined by
// the set (it depends on the kernel's hash order); Write's must still be, so that a parsed
// file and the cluster state print the same.
func TestWriteOrderDependsOnlyOnTheSet(t *testing.T) {
	addrs := []string{
		"10.0.0.1", "100.0.0.1", "200.0.0.1", // a cycle: 10 < 100 < 200 < 10
		"138.0.0.1", // exactly 2^31 from 10.0.0.1: each sorts before the other
		"192.0.2.7", "1.2.3.4", "250.1.1.1",
	}
	var services []fsm.Service
	var servers []fsm.RealServer
	for _, a := range addrs {
		s := fsm.Service{Protocol: fsm.TCP, VIP: netip.MustParseAddr(a), Port: 80, Scheduler: "rr", Forwarding: fsm.NAT}
		fsm.NormalizeService(&s)
		services = append(services, s)
		rs := fsm.RealServer{Service: "tcp-192.0.2.1-80", Addr: netip.MustParseAddr(a), Port: 80, Weight: 1}
		servers = append(servers, rs)
	}
	owner := fsm.Service{Protocol: fsm.TCP, VIP: netip.MustParseAddr("192.0.2.1"), Port: 80, Scheduler: "rr", Forwarding: fsm.NAT}
	fsm.NormalizeService(&owner)
	services = append(services, owner)

	want := writeString(t, New(services, servers))
	rng := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		s, r := slices.Clone(services), slices.Clone(servers)
		rng.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
		rng.Shuffle(len(r), func(i, j int) { r[i], r[j] = r[j], r[i] })
		if got := writeString(t, New(s, r)); got != want {
			t.Fatalf("order changed with the input order:\n%s\nwant:\n%s", got, want)
		}
	}
	rules, err := Parse(strings.NewReader(want))
	if err != nil {
		t.Fatal(err)
	}
	if got := writeString(t, rules); got != want {
		t.Errorf("Parse then Write of a wrapping set:\n%s\nwant:\n%s", got, want)
	}
}

func TestWrapSubIsCsIntSubtraction(t *testing.T) {
	tests := []struct {
		a, b uint32
		want int
	}{
		{10 << 24, 200 << 24, 1107296256},  // 10.x after 200.x
		{200 << 24, 10 << 24, -1107296256}, // 200.x before 10.x
		{10 << 24, 100 << 24, -1509949440}, // 10.x before 100.x
		{0, 1 << 31, -1 << 31},
		{1 << 31, 0, -1 << 31},
		{7, 7, 0},
	}
	for _, tt := range tests {
		if got := wrapSub(tt.a, tt.b); got != tt.want {
			t.Errorf("wrapSub(%#x, %#x) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
