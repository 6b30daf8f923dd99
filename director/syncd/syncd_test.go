package syncd

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"github.com/vishvananda/netns"

	"github.com/raftlvs/raftlvs/director/ipvs"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMessagesMatchTheKernelLayout(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the expected bytes are written for a little-endian host")
	}
	tests := []struct {
		name string
		enc  func() ([]byte, error)
		want string
	}{
		{
			// Verified against ipvsadm's encoding (dependencies.md §1b).
			name: "start master eth0 syncid 7 maxlen 1472 224.0.0.81:8848 ttl 1",
			enc: func() ([]byte, error) {
				return encodeStart(Master, Config{Interface: "eth0", SyncID: 7, MaxLen: 1472,
					Group: netip.MustParseAddr("224.0.0.81"), Port: 8848, TTL: 1})
			},
			want: `40000300 08000100 01000000 09000200 65746830 00000000 08000300 07000000
			       06000400 c0050000 08000500 e0000051 06000700 90220000 05000800 01000000`,
		},
		{
			// nest(len 0x34, type 3): STATE=2, IFN "eth1\0" (len 9, padded to 12),
			// SYNC_ID=0 (any), GROUP6 ff02::12 (len 20).
			name: "start backup eth1 any syncid ff02::12 defaults",
			enc: func() ([]byte, error) {
				return encodeStart(Backup, Config{Interface: "eth1", Group: netip.MustParseAddr("ff02::12")})
			},
			want: `34000300 08000100 02000000 09000200 65746831 00000000 08000300 00000000
			       14000600 ff020000 00000000 00000000 00000012`,
		},
		{
			name: "start backup minimal",
			enc:  func() ([]byte, error) { return encodeStart(Backup, Config{Interface: "bond0.100", SyncID: 255}) },
			// IFN "bond0.100\0" is 10 bytes: attr len 14, padded to 16.
			want: `24000300 08000100 02000000 0e000200 626f6e64 302e3130 30000000 08000300 ff000000`,
		},
		{
			name: "stop master",
			enc:  func() ([]byte, error) { return encodeStop(Master) },
			want: `0c000300 08000100 01000000`,
		},
		{
			name: "stop backup",
			enc:  func() ([]byte, error) { return encodeStop(Backup) },
			want: `0c000300 08000100 02000000`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.enc()
			if err != nil {
				t.Fatal(err)
			}
			if want := unhex(t, tt.want); !bytes.Equal(got, want) {
				t.Errorf("encoded\n %x\nwant\n %x", got, want)
			}
		})
	}
}

func TestParseDaemonReadsGetReplies(t *testing.T) {
	tests := []struct {
		name  string
		reply string
		want  Daemon
	}{
		{"master with IPv4 group, nest flagged", // the kernel sets NLA_F_NESTED on replies
			`40000380 08000100 01000000 09000200 65746830 00000000 08000300 07000000
			 06000400 c0050000 08000500 e0000051 06000700 90220000 05000800 01000000`,
			Daemon{State: Master, Config: Config{Interface: "eth0", SyncID: 7, MaxLen: 1472,
				Group: netip.MustParseAddr("224.0.0.81"), Port: 8848, TTL: 1}}},
		{"backup with IPv6 group",
			`34000300 08000100 02000000 09000200 65746831 00000000 08000300 00000000
			 14000600 ff020000 00000000 00000000 00000012`,
			Daemon{State: Backup, Config: Config{Interface: "eth1", Group: netip.MustParseAddr("ff02::12")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseDaemon(unhex(t, tt.reply))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("parsed %+v, want %+v", got, tt.want)
			}
		})
	}
	if _, err := parseDaemon(unhex(t, "0c000400 08000100 01000000")); err == nil {
		t.Error("a reply without the daemon attribute parsed without error")
	}
	if _, err := parseDaemon(unhex(t, "0c000300 08")); err == nil {
		t.Error("a truncated reply parsed without error")
	}
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"minimal", Config{Interface: "eth0"}, true},
		{"full IPv4", Config{Interface: "eth0", SyncID: 1, Group: netip.MustParseAddr("239.1.1.1"), Port: 9000, TTL: 2, MaxLen: 1400}, true},
		{"IPv6 group", Config{Interface: "eth0", Group: netip.MustParseAddr("ff05::81")}, true},
		{"15-byte interface", Config{Interface: "abcdefghijklmno"}, true},
		{"no interface", Config{}, false},
		{"16-byte interface", Config{Interface: "abcdefghijklmnop"}, false},
		{"slash in interface", Config{Interface: "eth/0"}, false},
		{"unicast group", Config{Interface: "eth0", Group: netip.MustParseAddr("10.0.0.1")}, false},
		{"IPv6 unicast group", Config{Interface: "eth0", Group: netip.MustParseAddr("2001:db8::1")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestOpenWithoutIPVSReturnsErrNoIPVS(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	name := fmt.Sprintf("syncd-test-%d", os.Getpid())
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	ns, err := netns.NewNamed(name)
	if err != nil {
		t.Fatal(err)
	}
	ns.Close()
	if err := netns.Set(orig); err != nil {
		t.Fatal(err)
	}
	orig.Close()
	runtime.UnlockOSThread()
	t.Cleanup(func() {
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("delete netns %s: %v", name, err)
		}
	})
	c, err := Open("/var/run/netns/" + name)
	if err == nil {
		c.Close()
		t.Skip("this kernel has IPVS; the lab tests cover it")
	}
	if !errors.Is(err, ipvs.ErrNoIPVS) {
		t.Fatalf("Open = %v, want an error wrapping ipvs.ErrNoIPVS", err)
	}
}

func TestSameSettingsIgnoresKernelDefaults(t *testing.T) {
	running := Config{Interface: "eth1", SyncID: 7, Group: netip.MustParseAddr("224.0.0.81"), Port: 8848, TTL: 1, MaxLen: 1472}
	tests := []struct {
		name string
		want Config
		same bool
	}{
		{"defaults left to the kernel", Config{Interface: "eth1", SyncID: 7}, true},
		{"everything given and equal", running, true},
		{"other interface", Config{Interface: "eth0", SyncID: 7}, false},
		{"other sync id", Config{Interface: "eth1", SyncID: 8}, false},
		{"other group", Config{Interface: "eth1", SyncID: 7, Group: netip.MustParseAddr("239.1.1.1")}, false},
		{"other port", Config{Interface: "eth1", SyncID: 7, Port: 9000}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sameSettings(running, tt.want); got != tt.same {
				t.Fatalf("sameSettings = %v, want %v", got, tt.same)
			}
		})
	}
}

// silentConn answers nothing until its deadline (a lost reply), then, once answering,
// gives each request the errno of answers.
type silentConn struct {
	deadline time.Time
	silent   bool
	answer   error
	requests []uint8
	closed   bool
}

func (s *silentConn) Execute(m genetlink.Message, _ uint16, _ netlink.HeaderFlags) ([]genetlink.Message, error) {
	s.requests = append(s.requests, m.Header.Command)
	if s.silent {
		time.Sleep(time.Until(s.deadline))
		return nil, fmt.Errorf("receive: %w", os.ErrDeadlineExceeded)
	}
	return nil, s.answer
}

func (s *silentConn) SetDeadline(t time.Time) error { s.deadline = t; return nil }
func (s *silentConn) Close() error                  { s.closed = true; return nil }

func TestALostAnswerIsAskedAgainOnANewSocket(t *testing.T) {
	lost := &silentConn{silent: true}
	fresh := &silentConn{answer: syscall.ESRCH} // the stop had happened: nothing runs now
	c := &Client{conn: lost, timeout: 10 * time.Millisecond, dial: func() (conn, error) { return fresh, nil }}
	if err := c.Stop(Master); err != nil {
		t.Fatalf("Stop after a lost answer = %v, want success (ESRCH on the retry)", err)
	}
	if !lost.closed || len(lost.requests) != 1 || len(fresh.requests) != 1 || fresh.requests[0] != cmdDelDaemon {
		t.Errorf("lost socket closed %v with %v, new one asked %v; want one DEL_DAEMON on each, the old socket closed",
			lost.closed, lost.requests, fresh.requests)
	}

	// A kernel that answers neither time: an error that says so, in bounded time.
	c = &Client{conn: &silentConn{silent: true}, timeout: 10 * time.Millisecond,
		dial: func() (conn, error) { return &silentConn{silent: true}, nil }}
	err := c.Start(Backup, Config{Interface: "eth0"})
	if !errors.Is(err, os.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "no answer from the kernel within 10ms, twice") {
		t.Errorf("Start with no answer = %v, want a deadline error that says it was asked twice", err)
	}
	if _, err := c.List(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("List with no answer = %v, want a deadline error", err)
	}
}
