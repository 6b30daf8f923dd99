package director

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// Connection is one entry of the kernel's IPVS connection table, as ipvsadm -Lnc lists
// it: the client, the virtual service it reached, the real server it went to.
type Connection struct {
	Protocol    string // TCP, UDP, SCTP (as the kernel names it)
	Client      netip.AddrPort
	Virtual     netip.AddrPort // for a fwmark service, the address the packet was sent to
	Destination netip.AddrPort
	State       string // ESTABLISHED, SYN_RECV, FIN_WAIT, TIME_WAIT, … (UDP, NONE, …)
	Expires     time.Duration
	// PEName and PEData are the persistence engine's (sip: the Call-ID), if any.
	PEName, PEData string
}

// ConnectionTable reads a director's IPVS connections. netlink has no dump of them:
// ipvsadm -Lnc reads /proc/net/ip_vs_conn, and so does ProcConnections.
type ConnectionTable interface {
	// Connections returns the first limit entries (limit <= 0: all) and how many there
	// are in all.
	Connections(limit int) ([]Connection, int, error)
}

// ErrNoConnectionTable: this director has no IPVS connection table to read (a kernel
// without IPVS, a test's fake kernel).
var ErrNoConnectionTable = errors.New("no IPVS connection table on this director")

// ProcConnections reads the table of the current network namespace from procfs.
type ProcConnections struct {
	Path string // default /proc/self/net/ip_vs_conn
}

func (p ProcConnections) Connections(limit int) ([]Connection, int, error) {
	path := p.Path
	if path == "" {
		path = "/proc/self/net/ip_vs_conn"
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, fmt.Errorf("read %s: %w", path, ErrNoConnectionTable)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read the IPVS connection table: %w", err)
	}
	defer f.Close()
	return ParseConnections(f, limit)
}

// ParseConnections reads /proc/net/ip_vs_conn's format (net/netfilter/ipvs/ip_vs_conn.c,
// ip_vs_conn_seq_show): a header line, then one line per connection,
//
//	Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
//	TCP 0A64000A A5D2 0A640065 0050 0A640015 0050 ESTABLISHED     899
//
// IPv4 addresses and all ports in hex, IPv6 addresses written out, the expiry in seconds.
// It keeps the first limit entries (limit <= 0: all) and counts the rest.
func ParseConnections(r io.Reader, limit int) ([]Connection, int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	var out []Connection
	total := 0
	for line := 0; sc.Scan(); line++ {
		if line == 0 {
			continue // the header
		}
		text := sc.Text()
		if strings.TrimSpace(text) == "" {
			continue
		}
		total++
		if limit > 0 && len(out) >= limit {
			continue
		}
		c, err := parseConnLine(text)
		if err != nil {
			return nil, 0, fmt.Errorf("IPVS connection table, line %d: %w", line+1, err)
		}
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		return nil, 0, fmt.Errorf("read the IPVS connection table: %w", err)
	}
	return out, total, nil
}

func parseConnLine(text string) (Connection, error) {
	f := strings.Fields(text)
	if len(f) < 9 {
		return Connection{}, fmt.Errorf("%q: %d fields, want at least 9", text, len(f))
	}
	var c Connection
	var err error
	c.Protocol, c.State = f[0], f[7]
	if c.Client, err = connAddrPort(f[1], f[2]); err != nil {
		return Connection{}, err
	}
	if c.Virtual, err = connAddrPort(f[3], f[4]); err != nil {
		return Connection{}, err
	}
	if c.Destination, err = connAddrPort(f[5], f[6]); err != nil {
		return Connection{}, err
	}
	secs, err := strconv.ParseUint(f[8], 10, 32)
	if err != nil {
		return Connection{}, fmt.Errorf("expiry %q: %w", f[8], err)
	}
	c.Expires = time.Duration(secs) * time.Second
	if len(f) > 9 {
		c.PEName = f[9]
	}
	if len(f) > 10 {
		c.PEData = strings.Join(f[10:], " ")
	}
	return c, nil
}

// connAddrPort reads an address (8 hex digits for IPv4, %pI6 for IPv6) and a hex port.
func connAddrPort(addr, port string) (netip.AddrPort, error) {
	p, err := strconv.ParseUint(port, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("port %q: %w", port, err)
	}
	if strings.Contains(addr, ":") {
		a, err := netip.ParseAddr(addr)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("address %q: %w", addr, err)
		}
		return netip.AddrPortFrom(a, uint16(p)), nil
	}
	v, err := strconv.ParseUint(addr, 16, 32)
	if err != nil || len(addr) != 8 {
		return netip.AddrPort{}, fmt.Errorf("address %q: not 8 hex digits", addr)
	}
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(v))
	return netip.AddrPortFrom(netip.AddrFrom4(b), uint16(p)), nil
}

// IPVSConnections reads this director's IPVS connection table: the first limit entries
// (limit <= 0: all) and how many there are in all.
func (d *Director) IPVSConnections(limit int) ([]Connection, int, error) {
	if d.kernel.Conns == nil {
		return nil, 0, ErrNoConnectionTable
	}
	return d.kernel.Conns.Connections(limit)
}
