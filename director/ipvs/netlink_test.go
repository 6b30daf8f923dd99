//go:build linux

package ipvs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// attrs splits netlink attributes by type (nested flag masked off), checking alignment.
func attrs(t *testing.T, b []byte) map[uint16][]byte {
	t.Helper()
	out := map[uint16][]byte{}
	for len(b) > 0 {
		if len(b) < 4 {
			t.Fatalf("trailing %d bytes", len(b))
		}
		n := int(binary.NativeEndian.Uint16(b))
		typ := binary.NativeEndian.Uint16(b[2:]) & 0x3fff
		if n < 4 || n > len(b) {
			t.Fatalf("attribute %d: length %d of %d", typ, n, len(b))
		}
		out[typ] = b[4:n]
		b = b[min((n+3)&^3, len(b)):]
	}
	return out
}

// message parses one netlink message appended by appendOp: header, genl header, attributes.
func message(t *testing.T, b []byte) (syscall.NlMsghdr, uint8, map[uint16][]byte) {
	t.Helper()
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("parse: %d messages, %v", len(msgs), err)
	}
	m := msgs[0]
	if m.Data[1] != 1 {
		t.Errorf("genl version %d, want 1", m.Data[1])
	}
	return m.Header, m.Data[0], attrs(t, m.Data[4:])
}

func u32(b []byte) uint32 { return binary.NativeEndian.Uint32(b) }

// ne16 and ne32 are host-order integers as netlink carries them.
func ne16(v uint16) []byte { return binary.NativeEndian.AppendUint16(nil, v) }
func ne32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

// The numbers below are include/uapi/linux/ip_vs.h's, written out independently of
// netlink.go's constants.
func TestWriterEncodesServiceMessagesAsTheKernelReadsThem(t *testing.T) {
	w := &writer{family: 0x25, seq: 7}
	svc := Service{Family: FamilyIPv4, Protocol: ProtocolUDP, Address: webVIP, Port: 5060, Scheduler: "sh",
		Flags: FlagPersistent | FlagSched1 | FlagHashed, Timeout: 300, Netmask: 0xffffff00, PEName: "sip"}
	h, cmd, top := message(t, w.appendOp(nil, Op{Kind: OpAddService, Service: svc}))
	if h.Type != 0x25 || h.Seq != 7 || h.Flags != unix.NLM_F_REQUEST || cmd != 1 /* IPVS_CMD_NEW_SERVICE */ {
		t.Errorf("header type %#x seq %d flags %#x cmd %d", h.Type, h.Seq, h.Flags, cmd)
	}
	a := attrs(t, top[1]) // IPVS_CMD_ATTR_SERVICE
	for typ, want := range map[uint16][]byte{
		1:  ne16(2),                                 // AF: AF_INET, u16
		2:  ne16(17),                                // PROTOCOL: UDP, u16
		3:  {192, 0, 2, 10},                         // ADDR
		4:  {0x13, 0xc4},                            // PORT 5060, network order
		6:  []byte("sh\x00"),                        // SCHED_NAME
		7:  append(ne32(0x09), ne32(0xffffffff)...), // FLAGS {persistent|sched1, mask}, HASHED dropped
		8:  ne32(300),                               // TIMEOUT
		9:  {255, 255, 255, 0},                      // NETMASK, network order
		11: []byte("sip\x00"),                       // PE_NAME
	} {
		if !bytes.Equal(a[typ], want) {
			t.Errorf("service attribute %d = %v, want %v", typ, a[typ], want)
		}
	}
	if len(a) != 9 {
		t.Errorf("%d service attributes, want 9", len(a))
	}

	// A delete names the service only; a fwmark service by mark and family.
	_, cmd, top = message(t, w.appendOp(nil, Op{Kind: OpDeleteService, Service: Service{Family: FamilyIPv6, FWMark: 9, Scheduler: "rr"}}))
	a = attrs(t, top[1])
	if cmd != 3 || len(a) != 2 || !bytes.Equal(a[1], ne16(10)) || u32(a[5]) != 9 {
		t.Errorf("fwmark delete: cmd %d attributes %v", cmd, a)
	}
}

func TestWriterEncodesDestinationMessagesAsTheKernelReadsThem(t *testing.T) {
	w := &writer{family: 0x25}
	svc := Service{Family: FamilyIPv6, Protocol: ProtocolTCP, Address: dnsVIP, Port: 53, Scheduler: "rr"}
	d := Destination{Address: netip.MustParseAddr("2001:db8::7"), Port: 8053, Weight: 3, Forwarding: ForwardTunnel, UpperThreshold: 100, LowerThreshold: 10}
	_, cmd, top := message(t, w.appendOp(nil, Op{Kind: OpUpdateDestination, Service: svc, Destination: d}))
	if cmd != 6 /* IPVS_CMD_SET_DEST */ {
		t.Errorf("cmd %d, want 6", cmd)
	}
	if s := attrs(t, top[1]); len(s) != 4 || !bytes.Equal(s[3], dnsVIP.AsSlice()) {
		t.Errorf("service key attributes %v, want AF, protocol, address, port", s)
	}
	a := attrs(t, top[2]) // IPVS_CMD_ATTR_DEST
	if !bytes.Equal(a[1], d.Address.AsSlice()) || !bytes.Equal(a[2], []byte{0x1f, 0x75}) ||
		u32(a[3]) != 2 || u32(a[4]) != 3 || u32(a[5]) != 100 || u32(a[6]) != 10 || len(a) != 6 {
		t.Errorf("destination attributes %v", a)
	}
	_, cmd, top = message(t, w.appendOp(nil, Op{Kind: OpDeleteDestination, Service: svc, Destination: d}))
	if a := attrs(t, top[2]); cmd != 7 || len(a) != 2 {
		t.Errorf("delete: cmd %d, destination attributes %v, want address and port", cmd, a)
	}
}

// The host kernel has no IPVS, but any kernel answers generic netlink: a family number
// nobody has is refused message by message (ENOENT), which shows that every op of a
// batch cut into several system calls gets its own answer.
func TestWriterAttributesEachAnswerToItsOp(t *testing.T) {
	w, err := openWriter("", 0xfff0)
	if err != nil {
		t.Fatalf("openWriter: %v", err)
	}
	defer w.close()
	ops := make([]Op, 3*writeMaxMessages+5)
	for i := range ops {
		ops[i] = Op{Kind: OpAddDestination, Service: Service{Family: FamilyIPv4, Protocol: ProtocolTCP, Address: webVIP, Port: 80},
			Destination: Destination{Address: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), Port: 80, Weight: 1}}
	}
	errs := w.apply(ops)
	for i, err := range errs {
		if !errors.Is(err, syscall.ENOENT) {
			t.Fatalf("op %d: %v, want ENOENT", i, err)
		}
	}
	// Successes and failures mixed: nlctrl answers GETFAMILY for a family that exists
	// and refuses one that does not; only the failure and the final ack are errors.
	w.out, w.family = w.out[:0], unix.GENL_ID_CTRL
	first, last := w.seq+1, 0
	for _, name := range []string{"nlctrl", "no-such-family", "nlctrl"} {
		w.seq++
		last = len(w.out)
		w.out = appendGetFamily(w.out, w.seq, name)
	}
	binary.NativeEndian.PutUint16(w.out[last+6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	errs = make([]error, 3)
	if err := w.exchange(first, errs); err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if errs[0] != nil || !errors.Is(errs[1], syscall.ENOENT) || errs[2] != nil {
		t.Errorf("answers %v, want [nil ENOENT nil]", errs)
	}
}

func appendGetFamily(b []byte, seq uint32, name string) []byte {
	start := len(b)
	b = binary.NativeEndian.AppendUint32(b, 0)
	b = binary.NativeEndian.AppendUint16(b, unix.GENL_ID_CTRL)
	b = binary.NativeEndian.AppendUint16(b, unix.NLM_F_REQUEST)
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 0)
	b = append(b, unix.CTRL_CMD_GETFAMILY, 1, 0, 0)
	b = appendAttr(b, unix.CTRL_ATTR_FAMILY_NAME, append([]byte(name), 0))
	binary.NativeEndian.PutUint32(b[start:], uint32(len(b)-start))
	return b
}

// A call whose replies overran the receive buffer must not cost the next call its own:
// the writer drains what is left before sending again.
func TestWriterRecoversFromAnOverrunReceiveBuffer(t *testing.T) {
	w, err := openWriter("", 0xfff0)
	if err != nil {
		t.Fatalf("openWriter: %v", err)
	}
	defer w.close()
	ops := make([]Op, writeMaxMessages)
	for i := range ops {
		ops[i] = Op{Kind: OpDeleteService, Service: Service{Family: FamilyIPv4, Protocol: ProtocolTCP, Address: webVIP, Port: uint16(i + 1)}}
	}
	if err := unix.SetsockoptInt(w.sock.GetFd(), unix.SOL_SOCKET, unix.SO_RCVBUF, 2048); err != nil {
		t.Fatal(err)
	}
	lost := 0
	for _, err := range w.apply(ops) {
		if !errors.Is(err, syscall.ENOENT) {
			lost++
		}
	}
	if lost == 0 {
		t.Fatal("128 error replies fit in a 2 KiB receive buffer: the test shows nothing")
	}
	if err := unix.SetsockoptInt(w.sock.GetFd(), unix.SOL_SOCKET, unix.SO_RCVBUF, writeRcvBuf); err != nil {
		t.Fatal(err)
	}
	for i, err := range w.apply(ops[:5]) {
		if !errors.Is(err, syscall.ENOENT) {
			t.Errorf("op %d after an overrun: %v, want ENOENT", i, err)
		}
	}
}
