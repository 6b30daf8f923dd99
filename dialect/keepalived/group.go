package keepalived

import (
	"encoding/binary"
	"math"
	"net/netip"
	"strconv"
	"strings"

	"github.com/raftlvs/raftlvs/fsm"
)

// groupConf is a virtual_server_group: address ranges and fwmarks that share one
// virtual_server's settings and real servers.
type groupConf struct {
	name    string
	node    *Node
	entries []groupEntry
	used    bool
}

// groupEntry is one line of a group: an inclusive address range with a port, or a fwmark.
type groupEntry struct {
	at          Pos
	first, last netip.Addr
	port        uint16
	fwmark      uint32
	family      fsm.Family // of a fwmark entry: "" unless inet or inet6 is given
	count       uint64
}

func (t *translator) group(_ *translator, n *Node) {
	name := n.Args[0].Text
	if old := t.groups[name]; old != nil {
		t.fail(errorAt(n.Pos(), ErrValue, "virtual_server_group %s is defined twice (first at %s)", name, old.node.Pos()))
		return
	}
	g := &groupConf{name: name, node: n}
	for _, e := range n.Block {
		if ge, err := groupLine(e); err != nil {
			t.fail(err)
		} else {
			g.entries = append(g.entries, ge)
		}
	}
	if len(g.entries) == 0 && !t.failed() {
		t.report(n.Pos(), Unmapped, "virtual_server_group "+name, "the group has no entries: keepalived drops it")
	}
	t.groups[name] = g
	t.groupSeq = append(t.groupSeq, g)
}

// groupLine reads "ADDR[-END|/LEN] [PORT]" or "fwmark N [inet|inet6]".
func groupLine(e *Node) (groupEntry, *Error) {
	ge := groupEntry{at: e.Pos()}
	if e.HasBlock {
		return ge, errorAt(e.Open, ErrSyntax, "a virtual_server_group line takes no block")
	}
	if e.Name.Text == "fwmark" {
		if len(e.Args) < 1 || len(e.Args) > 2 {
			return ge, errorAt(e.Pos(), ErrValue, "want fwmark N [inet|inet6]")
		}
		m, err := readUint(e.Args[0], "fwmark", 1, fsm.MaxFWMark)
		if err != nil {
			return ge, err
		}
		ge.fwmark, ge.count = uint32(m), 1
		if len(e.Args) == 2 {
			switch e.Args[1].Text {
			case "inet":
				ge.family = fsm.IPv4
			case "inet6":
				ge.family = fsm.IPv6
			default:
				return ge, errorAt(e.Args[1].Pos, ErrValue, "fwmark family %q: want inet or inet6", e.Args[1].Text)
			}
		}
		return ge, nil
	}
	if len(e.Args) > 1 {
		return ge, errorAt(e.Args[1].Pos, ErrValue, "a group line is ADDRESS [PORT], not %q more", e.Args[1].Text)
	}
	if len(e.Args) == 1 {
		p, err := readPort(e.Args[0], "port")
		if err != nil {
			return ge, err
		}
		ge.port = p
	}
	first, last, err := addressRange(e.Name)
	if err != nil {
		return ge, err
	}
	ge.first, ge.last = first, last
	ge.count = span(first, last)
	return ge, nil
}

// addressRange reads keepalived's group addresses: a.b.c.d, a.b.c.d-e (last octet; for
// IPv6 the last 16-bit group, in hex), a.b.c.d-w.x.y.z, or a.b.c.d/len (every address
// of the prefix, which must have no host bits set).
func addressRange(w Word) (netip.Addr, netip.Addr, *Error) {
	s := w.Text
	bad := func(why string) (netip.Addr, netip.Addr, *Error) {
		return netip.Addr{}, netip.Addr{}, errorAt(w.Pos, ErrValue, "group address %q: %s", s, why)
	}
	if _, bits, ok := strings.Cut(s, "/"); ok {
		p, err := netip.ParsePrefix(s)
		if err != nil || bits == "0" {
			return bad("want ADDRESS/LENGTH with a length of 1 or more")
		}
		if p.Masked() != p {
			return bad("the address has bits set beyond the prefix length")
		}
		return p.Addr(), lastOf(p), nil
	}
	base, end, isRange := strings.Cut(s, "-")
	first, err := netip.ParseAddr(base)
	if err != nil || first.Zone() != "" {
		return bad("want a numeric IPv4 or IPv6 address")
	}
	first = first.Unmap()
	if !isRange {
		return first, first, nil
	}
	if strings.ContainsAny(end, ".:") {
		last, err := netip.ParseAddr(end)
		switch {
		case err != nil:
			return bad("the end of the range is not an address")
		case last.Unmap().Is4() != first.Is4():
			return bad("the ends of the range are of different families")
		case last.Unmap().Less(first):
			return bad("the range ends before it starts")
		}
		return first, last.Unmap(), nil
	}
	b := first.AsSlice()
	if first.Is4() {
		v, err := strconv.ParseUint(end, 10, 8)
		if err != nil || byte(v) <= b[3] {
			return bad("the end must be a last octet (0..255) above the start's")
		}
		b[3] = byte(v)
	} else {
		v, err := strconv.ParseUint(end, 16, 16)
		if err != nil || uint16(v) <= binary.BigEndian.Uint16(b[14:]) {
			return bad("the end must be a last group (hex, to ffff) above the start's")
		}
		binary.BigEndian.PutUint16(b[14:], uint16(v))
	}
	last, _ := netip.AddrFromSlice(b)
	return first, last, nil
}

func lastOf(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// span counts the addresses first..last, saturating at MaxUint64.
func span(first, last netip.Addr) uint64 {
	a, b := first.As16(), last.As16()
	ahi, alo := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:])
	bhi, blo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	lo := blo - alo
	hi := bhi - ahi
	if blo < alo {
		hi--
	}
	if hi != 0 || lo == math.MaxUint64 {
		return math.MaxUint64
	}
	return lo + 1
}
