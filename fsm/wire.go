package fsm

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"time"
)

// The table's commands (services and real servers added, edited and removed, an agent's
// real server, and batches of them) are body version 3: a compact binary encoding. A
// restore of 10,000 × 10 is 110,000 of them, decoded by every director in turn: as JSON
// that decoding was a third of the leader's work under the lab's emulation and the bytes
// three times as many to store, encrypt and send. Entries written as JSON (version 1)
// decode as before. A director of older code refuses a version 3 entry and stops (see
// Decode): upgrade the followers first, the leader last.
//
// Fields go in declaration order:
//   - a string from a fixed list (protocol, family, scheduler, forwarding, origin, admin
//     state, health…) as one byte, its place in symbolTable (0: empty; 255: not in the
//     list, its length and bytes follow);
//   - a service name as a uvarint, 0 for the name before it in the same batch or chunk,
//     else its length + 1 and the bytes (a service's ten real servers name it once);
//   - other strings and byte strings as a uvarint length and the bytes, integers as
//     (u)varints, an address as a length byte (0, 4 or 16; 17 and 16 bytes more for one
//     with a zone), a time as its MarshalBinary, length-prefixed (0: zero), a health
//     check as its JSON, length-prefixed (0: none);
//   - a batch as its count, then each command's entry, length-prefixed.
//
// Nothing may follow the last field. A real server an operator added is 20 bytes or so;
// as JSON it was 150. (Version 2 was a draft of this encoding, never released: it is
// refused as unknown, as any version this code does not know.)
const bodyBinary = 3

// symbolTable is fixed for body version 3: a string added to it later would read as
// garbage to a director that lacks it, so new strings go as literals (255).
var symbolTable = [...]string{
	"tcp", "udp", "sctp", "ipv4", "ipv6", "nat", "dr", "tun",
	"operator", "active", "draining", "unknown", "up", "down", "remove", "inhibit",
	"sh-fallback", "sh-port", "mh-fallback", "mh-port", "flag-1", "flag-2", "flag-3", "sip",
	"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh", "fo", "ovf", "twos",
}

const symbolLiteral = 255

var symbolCodes = func() map[string]byte {
	m := make(map[string]byte, len(symbolTable))
	for i, s := range symbolTable {
		m[s] = byte(i + 1)
	}
	return m
}()

// encodeBinary is the version 3 entry of c, or ok false if c has none. nm is the last
// service name written in the batch or chunk c belongs to.
func encodeBinary(c Command, nm *names) (entry []byte, ok bool, err error) {
	w := wire{b: []byte{byte(c.Type()), bodyBinary}, names: nm}
	switch c := c.(type) {
	case AddService:
		w.service(&c.Service)
	case EditService:
		w.service(&c.Service)
	case RemoveService:
		w.name(c.Name)
	case AddRealServer:
		w.realServer(&c.RealServer)
	case EditRealServer:
		w.realServer(&c.RealServer)
	case UpsertAgentRS:
		w.realServer(&c.RealServer)
	case RemoveRealServer:
		w.name(c.Key.Service)
		w.addr(c.Key.Addr)
		w.uint(uint64(c.Key.Port))
	case Batch:
		w.uint(uint64(len(c.Commands)))
		for i, sub := range c.Commands {
			e, err := encode(sub, nm)
			if err != nil {
				return nil, false, fmt.Errorf("encode batch command %d: %w", i, err)
			}
			w.bytes(e)
		}
	default:
		return nil, false, nil
	}
	if w.err != nil {
		return nil, false, fmt.Errorf("encode %T: %w", c, w.err)
	}
	return w.b, true, nil
}

// decodeBinary decodes the body of a version 3 entry of type t. nm is the last service
// name read in the same batch or chunk, so that a service's ten real servers share one
// copy of its name.
func decodeBinary(t CommandType, body []byte, depth int, nm *names) (Command, error) {
	r := reader{b: body, names: nm}
	var c Command
	switch t {
	case TypeAddService:
		c = AddService{Service: r.service()}
	case TypeEditService:
		c = EditService{Service: r.service()}
	case TypeRemoveService:
		c = RemoveService{Name: r.name()}
	case TypeAddRealServer:
		c = AddRealServer{RealServer: r.realServer()}
	case TypeEditRealServer:
		c = EditRealServer{RealServer: r.realServer()}
	case TypeUpsertAgentRS:
		c = UpsertAgentRS{RealServer: r.realServer()}
	case TypeRemoveRealServer:
		c = RemoveRealServer{Key: RSKey{Service: r.name(), Addr: r.addr(), Port: r.port()}}
	case TypeBatch:
		// An entry is at least its length and two bytes: a count beyond that is a lie.
		n := r.uint(uint64(len(r.b)) / 3)
		entries := make([][]byte, 0, n)
		for range n {
			entries = append(entries, r.bytes())
		}
		if r.err == nil && len(r.b) > 0 {
			r.fail("%d bytes after the last command", len(r.b))
		}
		if r.err != nil {
			return nil, r.err
		}
		cmds, err := decodeEntries(entries, depth, nm)
		if err != nil {
			return nil, fmt.Errorf("batch %w", err)
		}
		return Batch{Commands: cmds}, nil
	default:
		return nil, fmt.Errorf("command type %d body version %d: %w", t, bodyBinary, ErrUnknownCommand)
	}
	if r.err == nil && len(r.b) > 0 {
		r.err = fmt.Errorf("%d bytes after the last field: %w", len(r.b), ErrInvalid)
	}
	if r.err != nil {
		return nil, r.err
	}
	return c, nil
}

type wire struct {
	b     []byte
	err   error
	names *names
}

func (w *wire) sym(s string) {
	switch code, ok := symbolCodes[s]; {
	case s == "":
		w.b = append(w.b, 0)
	case ok:
		w.b = append(w.b, code)
	default:
		w.b = append(w.b, symbolLiteral)
		w.str(s)
	}
}

func (w *wire) name(s string) {
	if s == w.names.last {
		w.uint(0)
		return
	}
	w.names.last = s
	w.uint(uint64(len(s)) + 1)
	w.b = append(w.b, s...)
}

func (w *wire) uint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }
func (w *wire) int(v int64)   { w.b = binary.AppendVarint(w.b, v) }
func (w *wire) str(s string)  { w.uint(uint64(len(s))); w.b = append(w.b, s...) }
func (w *wire) bytes(b []byte) {
	w.uint(uint64(len(b)))
	w.b = append(w.b, b...)
}

func (w *wire) bool(v bool) {
	if v {
		w.b = append(w.b, 1)
		return
	}
	w.b = append(w.b, 0)
}

func (w *wire) addr(a netip.Addr) {
	switch {
	case !a.IsValid():
		w.b = append(w.b, 0)
	case a.Is4():
		a4 := a.As4()
		w.b = append(append(w.b, 4), a4[:]...)
	case a.Zone() != "":
		a16 := a.As16()
		w.b = append(append(w.b, 17), a16[:]...)
		w.str(a.Zone())
	default:
		a16 := a.As16()
		w.b = append(append(w.b, 16), a16[:]...)
	}
}

func (w *wire) time(t time.Time) {
	if t.IsZero() {
		w.uint(0)
		return
	}
	b, err := t.MarshalBinary()
	if err != nil && w.err == nil {
		w.err = fmt.Errorf("time %v: %w", t, err)
	}
	w.bytes(b)
}

func (w *wire) check(hc *HealthCheck) {
	if hc == nil {
		w.uint(0)
		return
	}
	js, err := json.Marshal(hc)
	if err != nil && w.err == nil {
		w.err = fmt.Errorf("health check: %w", err)
	}
	w.bytes(js)
}

func (w *wire) service(s *Service) {
	w.name(s.Name)
	w.sym(string(s.Protocol))
	w.addr(s.VIP)
	w.uint(uint64(s.Port))
	w.uint(uint64(s.FWMark))
	w.sym(string(s.Family))
	w.sym(s.Scheduler)
	w.uint(uint64(len(s.SchedFlags)))
	for _, f := range s.SchedFlags {
		w.sym(f)
	}
	w.uint(uint64(s.Persistence))
	w.int(int64(s.PersistMask))
	w.sym(s.PersistEngine)
	w.bool(s.OnePacket)
	w.sym(string(s.Forwarding))
	w.check(s.HealthCheck)
	w.sym(string(s.OnDown))
	w.int(int64(s.FailOpenPercent))
	w.int(int64(s.Quorum))
	w.int(int64(s.Hysteresis))
	w.addr(s.SorryServer.Addr())
	w.uint(uint64(s.SorryServer.Port()))
	w.bool(s.QuorumDown)
}

func (w *wire) realServer(rs *RealServer) {
	w.name(rs.Service)
	w.addr(rs.Addr)
	w.uint(uint64(rs.Port))
	w.int(int64(rs.Weight))
	w.uint(uint64(rs.UpperThreshold))
	w.uint(uint64(rs.LowerThreshold))
	w.sym(string(rs.Forwarding))
	w.check(rs.HealthCheck)
	w.sym(rs.Origin)
	w.sym(string(rs.Admin))
	w.sym(string(rs.Health))
	w.str(rs.HealthReason)
	w.time(rs.HealthSince)
}

// maxSchedFlags bounds what a hostile entry can make a decoder allocate; the kernel has
// three flag bits, validation refuses more.
const maxSchedFlags = 64

// names is the last service name a batch or chunk wrote or read.
type names struct{ last string }

// reader decodes fields in order; after the first error every field reads as zero and
// the error stays.
type reader struct {
	b     []byte
	err   error
	names *names
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrInvalid)
	}
	r.b = nil
}

func (r *reader) uint(limit uint64) uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("truncated number")
		return 0
	}
	if v > limit {
		r.fail("%d exceeds %d", v, limit)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) int(min, max int64) int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("truncated number")
		return 0
	}
	if v < min || v > max {
		r.fail("%d is out of range %d..%d", v, min, max)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) integer() int { return int(r.int(math.MinInt, math.MaxInt)) }
func (r *reader) port() uint16 { return uint16(r.uint(math.MaxUint16)) }
func (r *reader) u32() uint32  { return uint32(r.uint(math.MaxUint32)) }

func (r *reader) bytes() []byte {
	n := r.uint(math.MaxInt)
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail("%d bytes announced, %d left", n, len(r.b))
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) str() string {
	if b := r.bytes(); len(b) > 0 {
		return string(b)
	}
	return ""
}

// sym is a string from symbolTable, or a literal.
func (r *reader) sym() string {
	if len(r.b) == 0 {
		r.fail("truncated symbol")
		return ""
	}
	code := r.b[0]
	r.b = r.b[1:]
	switch {
	case code == 0:
		return ""
	case code == symbolLiteral:
		return r.str()
	case int(code) <= len(symbolTable):
		return symbolTable[code-1]
	}
	r.fail("symbol %d", code)
	return ""
}

// name is a service name: 0 is the one before it.
func (r *reader) name() string {
	n := r.uint(math.MaxInt)
	switch {
	case r.err != nil:
		return ""
	case n == 0:
		return r.names.last
	case n-1 > uint64(len(r.b)):
		r.fail("a name of %d bytes, %d left", n-1, len(r.b))
		return ""
	}
	r.names.last = string(r.b[:n-1])
	r.b = r.b[n-1:]
	return r.names.last
}

func (r *reader) bool() bool { return r.uint(1) == 1 }

func (r *reader) addr() netip.Addr {
	if len(r.b) == 0 {
		r.fail("truncated address")
		return netip.Addr{}
	}
	kind := r.b[0]
	r.b = r.b[1:]
	switch {
	case kind == 0:
		return netip.Addr{}
	case kind == 4 && len(r.b) >= 4:
		a := netip.AddrFrom4([4]byte(r.b[:4]))
		r.b = r.b[4:]
		return a
	case (kind == 16 || kind == 17) && len(r.b) >= 16:
		a := netip.AddrFrom16([16]byte(r.b[:16]))
		r.b = r.b[16:]
		if kind == 17 {
			a = a.WithZone(r.str())
		}
		return a
	}
	r.fail("address of kind %d", kind)
	return netip.Addr{}
}

func (r *reader) time() time.Time {
	b := r.bytes()
	var t time.Time
	if len(b) > 0 {
		if err := t.UnmarshalBinary(b); err != nil {
			r.fail("time: %v", err)
		} else if y := t.Year(); y < 0 || y > 9999 {
			r.fail("time in the year %d", y) // JSON cannot write it: every later snapshot would fail
		}
	}
	return t
}

func (r *reader) check() *HealthCheck {
	b := r.bytes()
	if len(b) == 0 {
		return nil
	}
	var hc *HealthCheck // as in a JSON entry: null is none
	if err := json.Unmarshal(b, &hc); err != nil {
		r.fail("health check: %v", err)
		return nil
	}
	return hc
}

func (r *reader) service() Service {
	var s Service
	s.Name = r.name()
	s.Protocol = Protocol(r.sym())
	s.VIP = r.addr()
	s.Port = r.port()
	s.FWMark = r.u32()
	s.Family = Family(r.sym())
	s.Scheduler = r.sym()
	if n := r.uint(maxSchedFlags); n > 0 {
		s.SchedFlags = make([]string, n)
		for i := range s.SchedFlags {
			s.SchedFlags[i] = r.sym()
		}
	}
	s.Persistence = r.u32()
	s.PersistMask = r.integer()
	s.PersistEngine = r.sym()
	s.OnePacket = r.bool()
	s.Forwarding = Forwarding(r.sym())
	s.HealthCheck = r.check()
	s.OnDown = DownAction(r.sym())
	s.FailOpenPercent = r.integer()
	s.Quorum = r.integer()
	s.Hysteresis = r.integer()
	if a, port := r.addr(), r.port(); a.IsValid() { // JSON has no text for a port alone
		s.SorryServer = netip.AddrPortFrom(a, port)
	}
	s.QuorumDown = r.bool()
	return s
}

func (r *reader) realServer() RealServer {
	var rs RealServer
	rs.Service = r.name()
	rs.Addr = r.addr()
	rs.Port = r.port()
	rs.Weight = r.integer()
	rs.UpperThreshold = r.u32()
	rs.LowerThreshold = r.u32()
	rs.Forwarding = Forwarding(r.sym())
	rs.HealthCheck = r.check()
	rs.Origin = r.sym()
	rs.Admin = AdminState(r.sym())
	rs.Health = Health(r.sym())
	rs.HealthReason = r.str()
	rs.HealthSince = r.time()
	return rs
}
