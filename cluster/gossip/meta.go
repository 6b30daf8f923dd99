package gossip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/hashicorp/memberlist"
)

// MetaMaxSize is memberlist's limit on a member's metadata. memberlist panics on more
// (in Create and UpdateNode), so Encode refuses it first.
const MetaMaxSize = memberlist.MetaMaxSize

// metaVersion is the first byte of the encoding. A member refuses a version it does not
// know rather than misread it, so directors are upgraded before agents.
const metaVersion = 1

// Limits of the encoding (one length byte each).
const (
	MaxIDLen       = 64 // as fsm names, so fsm.AgentOrigin(id) is a valid origin
	MaxServices    = 255
	maxAPIAddrLen  = 255
	maxWeight      = 65535 // fsm.MaxWeight
	flagDraining   = 1 << 0
	flagLeaving    = 1 << 1
	flagHealth     = 1 << 2 // each service carries the agent's own verdict
	flagIneligible = 1 << 3 // a director's tracked checks fail
	knownFlagsMask = flagDraining | flagLeaving | flagHealth | flagIneligible
	// MaxReasonLen bounds an agent's reason for a verdict: metadata is 512 bytes in all.
	MaxReasonLen = 48
)

// Health is an agent's own verdict on a service it serves (from its local check).
type Health uint8

const (
	HealthUnknown Health = iota // no local check, or no result yet: the directors decide
	HealthUp
	HealthDown
)

func (h Health) String() string {
	switch h {
	case HealthUp:
		return "up"
	case HealthDown:
		return "down"
	}
	return "unknown"
}

// Errors of Encode and Decode, for errors.Is.
var (
	ErrMetaTooLarge = errors.New("gossip metadata too large")
	ErrBadMeta      = errors.New("bad gossip metadata")
	ErrMetaVersion  = errors.New("unknown gossip metadata version")
)

// Role is what a member is in the pool.
type Role uint8

const (
	RoleDirector Role = 1
	RoleAgent    Role = 2
)

func (r Role) String() string {
	switch r {
	case RoleDirector:
		return "director"
	case RoleAgent:
		return "agent"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// ServicePort is one service an agent serves.
type ServicePort struct {
	Service string // the fsm service name
	Port    uint16 // the real-server port; 0 is the service's port
	Weight  int    // 0..65535
	// Health and Reason are the agent's own check of the service, if it runs one.
	Health Health
	Reason string
}

// Meta is what a member announces to the pool.
type Meta struct {
	Role Role
	ID   string // the director's node id or the agent's id

	// Director.
	APIAddr string // host:port of its HTTP API
	// Ineligible says the director's tracked checks fail: a planned leadership transfer
	// does not pick it (it would hand leadership straight on).
	Ineligible bool

	// Agent.
	Addr     netip.Addr // the real-server address
	Services []ServicePort
	// Draining asks the directors to stop sending new connections: an agent sets it
	// before it leaves.
	Draining bool
}

// Encode validates m and encodes it compactly:
//
//	version(1) role(1) flags(1) len(1) id
//	director: len(1) api-addr
//	agent:    len(1) addr(4|16) count(1) count × { len(1) service port(2) weight(2)
//	          [with the health flag: health(1) len(1) reason] }
//
// The health flag is set only by agents that check locally, so older directors read
// every other agent.
func (m Meta) Encode() ([]byte, error) { return m.encode(false) }

func (m Meta) encode(leaving bool) ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	var flags byte
	if m.Draining {
		flags |= flagDraining
	}
	if leaving {
		flags |= flagLeaving
	}
	if m.Ineligible {
		flags |= flagIneligible
	}
	withHealth := false
	for _, s := range m.Services {
		withHealth = withHealth || s.Health != HealthUnknown || s.Reason != ""
	}
	if withHealth {
		flags |= flagHealth
	}
	b := []byte{metaVersion, byte(m.Role), flags}
	b = appendString(b, m.ID)
	switch m.Role {
	case RoleDirector:
		b = appendString(b, m.APIAddr)
	case RoleAgent:
		addr := m.Addr.Unmap().AsSlice()
		b = append(b, byte(len(addr)))
		b = append(b, addr...)
		b = append(b, byte(len(m.Services)))
		for _, s := range m.Services {
			b = appendString(b, s.Service)
			b = binary.BigEndian.AppendUint16(b, s.Port)
			b = binary.BigEndian.AppendUint16(b, uint16(s.Weight))
			if withHealth {
				b = append(b, byte(s.Health))
				b = appendString(b, s.Reason)
			}
		}
	}
	if len(b) > MetaMaxSize {
		return nil, fmt.Errorf("%w: %s %s encodes to %d bytes, above memberlist's limit of %d (announce fewer services or shorter names)",
			ErrMetaTooLarge, m.Role, m.ID, len(b), MetaMaxSize)
	}
	return b, nil
}

func appendString(b []byte, s string) []byte {
	b = append(b, byte(len(s)))
	return append(b, s...)
}

func (m Meta) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadMeta, fmt.Sprintf(format, args...))
	}
	if err := validateName(m.ID); err != nil {
		return bad("id: %v", err)
	}
	switch m.Role {
	case RoleDirector:
		if len(m.APIAddr) > maxAPIAddrLen {
			return bad("director %s: api address is longer than %d bytes", m.ID, maxAPIAddrLen)
		}
		if _, _, err := net.SplitHostPort(m.APIAddr); err != nil {
			return bad("director %s: api address %q is not host:port", m.ID, m.APIAddr)
		}
		if m.Addr.IsValid() || len(m.Services) > 0 || m.Draining {
			return bad("director %s: only agents announce an address, services or draining", m.ID)
		}
	case RoleAgent:
		if m.APIAddr != "" || m.Ineligible {
			return bad("agent %s: only directors announce an api address or eligibility", m.ID)
		}
		a := m.Addr.Unmap()
		if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() {
			return bad("agent %s: %v is not a usable real-server address", m.ID, m.Addr)
		}
		if len(m.Services) > MaxServices {
			return bad("agent %s: %d services, at most %d", m.ID, len(m.Services), MaxServices)
		}
		seen := make(map[ServicePort]bool, len(m.Services))
		for _, s := range m.Services {
			if err := validateName(s.Service); err != nil {
				return bad("agent %s: service: %v", m.ID, err)
			}
			if s.Weight < 0 || s.Weight > maxWeight {
				return bad("agent %s: service %s: weight %d is out of range 0..%d", m.ID, s.Service, s.Weight, maxWeight)
			}
			if s.Health > HealthDown || len(s.Reason) > MaxReasonLen {
				return bad("agent %s: service %s: health %d or a reason longer than %d bytes", m.ID, s.Service, s.Health, MaxReasonLen)
			}
			k := ServicePort{Service: s.Service, Port: s.Port}
			if seen[k] {
				return bad("agent %s: service %s port %d is listed twice", m.ID, s.Service, s.Port)
			}
			seen[k] = true
		}
	default:
		return bad("unknown role %d", uint8(m.Role))
	}
	return nil
}

// validateName applies the fsm's name rules, so ids and service names that pass here are
// accepted by the replicated state.
func validateName(name string) error {
	if name == "" || len(name) > MaxIDLen {
		return fmt.Errorf("%q must be 1..%d characters", name, MaxIDLen)
	}
	for i, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			i > 0 && (c == '-' || c == '_' || c == '.' || c == ':')
		if !ok {
			return fmt.Errorf("%q: use letters, digits and - _ . : (starting with a letter or digit)", name)
		}
	}
	return nil
}

// DecodeMeta decodes what a member announced. Any input gives a valid Meta or an error
// (ErrBadMeta or ErrMetaVersion), never a panic.
func DecodeMeta(b []byte) (Meta, error) {
	m, _, err := decodeMeta(b)
	return m, err
}

func decodeMeta(b []byte) (m Meta, leaving bool, err error) {
	r := metaReader{b: b}
	if ver := r.byte(); r.err == nil && ver != metaVersion {
		return Meta{}, false, fmt.Errorf("%w: %d (this build reads %d)", ErrMetaVersion, ver, metaVersion)
	}
	m.Role = Role(r.byte())
	flags := r.byte()
	m.ID = r.string()
	switch m.Role {
	case RoleDirector:
		m.APIAddr = r.string()
	case RoleAgent:
		// An IPv4-mapped IPv6 address is refused: Encode writes IPv4 as 4 bytes, and
		// one meta has one encoding.
		if addr, ok := netip.AddrFromSlice(r.bytes(int(r.byte()))); ok && !addr.Is4In6() {
			m.Addr = addr
		}
		n := int(r.byte())
		for i := 0; i < n && r.err == nil; i++ {
			s := ServicePort{Service: r.string()}
			s.Port = r.uint16()
			s.Weight = int(r.uint16())
			if flags&flagHealth != 0 {
				s.Health = Health(r.byte())
				s.Reason = r.string()
			}
			m.Services = append(m.Services, s)
		}
	}
	switch {
	case r.err != nil:
		return Meta{}, false, r.err
	case len(r.b) > 0:
		return Meta{}, false, fmt.Errorf("%w: %d trailing bytes", ErrBadMeta, len(r.b))
	case flags&^knownFlagsMask != 0:
		return Meta{}, false, fmt.Errorf("%w: unknown flags %#x", ErrBadMeta, flags)
	}
	m.Draining = flags&flagDraining != 0
	m.Ineligible = flags&flagIneligible != 0
	if err := m.validate(); err != nil {
		return Meta{}, false, err
	}
	return m, flags&flagLeaving != 0, nil
}

// metaReader reads the encoding; the first short read sets err and later reads return zeros.
type metaReader struct {
	b   []byte
	err error
}

func (r *metaReader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.err = fmt.Errorf("%w: truncated", ErrBadMeta)
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *metaReader) byte() byte {
	if b := r.bytes(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *metaReader) uint16() uint16 {
	if b := r.bytes(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *metaReader) string() string { return string(r.bytes(int(r.byte()))) }
