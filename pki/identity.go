package pki

import (
	"crypto/x509"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// Role is what a certificate or a token makes its holder in the cluster.
type Role string

const (
	// RoleDirector: a Raft peer. The only role the Raft transport accepts, and an
	// admin on the API (a director can write to the Raft log directly anyway).
	RoleDirector Role = "director"
	// RoleAgent: a real-server agent. It may read the services it serves and register,
	// drain and deregister real servers at the addresses its certificate names; nothing
	// else.
	RoleAgent Role = "agent"
	// RoleOperator: a person or a CI job using the API, with an Access level.
	RoleOperator Role = "operator"
)

// ParseRole reads a role name (the CLI's --role).
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleDirector, RoleAgent, RoleOperator:
		return r, nil
	}
	return "", fmt.Errorf("%w: unknown role %q (want director, agent or operator)", ErrMalformed, s)
}

// Access is how much of the HTTP API an operator may use. Each level includes the ones
// before it.
type Access string

const (
	AccessNone    Access = ""
	AccessRead    Access = "read"    // status, save, listings
	AccessOperate Access = "operate" // services, real servers, restore, drain
	AccessAdmin   Access = "admin"   // join, leave, leadership transfer, tokens
)

// ParseAccess reads an access level name (the CLI's --access).
func ParseAccess(s string) (Access, error) {
	switch a := Access(s); a {
	case AccessRead, AccessOperate, AccessAdmin:
		return a, nil
	}
	return "", fmt.Errorf("%w: unknown access %q (want read, operate or admin)", ErrMalformed, s)
}

func (a Access) rank() int {
	switch a {
	case AccessRead:
		return 1
	case AccessOperate:
		return 2
	case AccessAdmin:
		return 3
	}
	return 0
}

// Includes reports whether a grants at least need.
func (a Access) Includes(need Access) bool { return need.rank() > 0 && a.rank() >= need.rank() }

// Identity is who a verified certificate or token says its holder is.
type Identity struct {
	Cluster string
	Role    Role
	ID      string       // director node id, agent id, or operator name
	Access  Access       // operators only; see Allows for the others
	IPs     []netip.Addr // directors and agents: the addresses the certificate names
	// Token is the token id when the identity came from a bearer token rather than a
	// certificate.
	Token string
}

func (id Identity) String() string {
	s := string(id.Role) + " " + id.ID
	if id.Token != "" {
		s += " (token " + id.Token + ")"
	}
	return s
}

// Allows reports whether id may use API endpoints that need access need. Directors
// may use them all: follower → leader forwarding carries every kind of request, and the
// forwarding director has checked its own caller first. Agents may use none: their
// endpoints check the role and the address (HasIP) instead.
func (id Identity) Allows(need Access) bool {
	switch id.Role {
	case RoleDirector:
		return need.rank() > 0
	case RoleOperator:
		return id.Access.Includes(need)
	}
	return false
}

// HasIP reports whether the certificate names addr: an agent may register only real
// servers at its own addresses.
func (id Identity) HasIP(addr netip.Addr) bool {
	return slices.Contains(id.IPs, addr.Unmap())
}

// Authorize says why id may not use an endpoint that needs access need, in words for a
// 403 answer; nil if it may.
func Authorize(id Identity, need Access) error {
	if id.Allows(need) {
		return nil
	}
	switch id.Role {
	case RoleOperator:
		have := string(id.Access)
		if have == "" {
			have = "no"
		}
		return fmt.Errorf("%w: %s has %s access; this needs %s", ErrForbidden, id, have, need)
	case RoleAgent:
		return fmt.Errorf("%w: %s: agents may only register and drain their own real servers; this needs operator %s access", ErrForbidden, id, need)
	}
	return fmt.Errorf("%w: %s: this needs %s access", ErrForbidden, id, need)
}

// URIScheme names raftlvs identities in certificates:
//
//	raftlvs://<cluster>/<role>/<id>                 director, agent
//	raftlvs://<cluster>/operator/<id>?access=<a>    operator
//	raftlvs://<cluster>                             the cluster CA
//
// A URI SAN, as SPIFFE does: it carries the three facts with no parsing of free-text
// subject fields, and name-based TLS verification never looks at it.
const URIScheme = "raftlvs"

// URI is the identity's URI SAN.
func (id Identity) URI() *url.URL {
	u := &url.URL{Scheme: URIScheme, Host: id.Cluster, Path: "/" + string(id.Role) + "/" + id.ID}
	if id.Role == RoleOperator {
		u.RawQuery = "access=" + string(id.Access)
	}
	return u
}

// validate checks that id can be written into a certificate.
func (id Identity) validate() error {
	if err := ValidClusterID(id.Cluster); err != nil {
		return err
	}
	if _, err := ParseRole(string(id.Role)); err != nil {
		return err
	}
	if err := validName("id", id.ID); err != nil {
		return err
	}
	switch {
	case id.Role == RoleOperator && id.Access.rank() == 0:
		return fmt.Errorf("%w: an operator needs an access level (read, operate or admin)", ErrMalformed)
	case id.Role != RoleOperator && id.Access != AccessNone:
		return fmt.Errorf("%w: only operators carry an access level, not a %s", ErrMalformed, id.Role)
	case id.Role == RoleOperator && len(id.IPs) > 0:
		return fmt.Errorf("%w: operator certificates name no addresses", ErrMalformed)
	}
	return nil
}

// ParseIdentityURI reads a raftlvs URI SAN.
func ParseIdentityURI(u *url.URL) (Identity, error) {
	bad := func(why string) (Identity, error) {
		return Identity{}, fmt.Errorf("%w: URI %q: %s", ErrNoIdentity, u.Redacted(), why)
	}
	if u.Scheme != URIScheme || u.User != nil || u.Port() != "" || u.Fragment != "" || u.Opaque != "" {
		return bad("want raftlvs://<cluster>/<role>/<id>")
	}
	parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	if !strings.HasPrefix(u.Path, "/") || len(parts) != 2 {
		return bad("want raftlvs://<cluster>/<role>/<id>")
	}
	id := Identity{Cluster: u.Host, Role: Role(parts[0]), ID: parts[1]}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return bad("bad query")
	}
	if id.Role == RoleOperator {
		if len(q) != 1 || len(q["access"]) != 1 {
			return bad("an operator identity needs exactly ?access=read|operate|admin")
		}
		id.Access = Access(q.Get("access"))
	} else if len(q) != 0 {
		return bad("only operator identities take a query")
	}
	if err := id.validate(); err != nil {
		return bad(err.Error())
	}
	return id, nil
}

// IdentityOf reads the raftlvs identity of a certificate: its one raftlvs URI SAN, and
// its IP SANs. It does not verify the certificate: call it only on a chain that was
// verified (VerifyPeer, the tls.Configs of this package), or on one's own.
func IdentityOf(cert *x509.Certificate) (Identity, error) {
	var found []*url.URL
	for _, u := range cert.URIs {
		if u.Scheme == URIScheme {
			found = append(found, u)
		}
	}
	switch len(found) {
	case 0:
		return Identity{}, fmt.Errorf("%w: certificate %q has no URI SAN raftlvs://<cluster>/<role>/<id>", ErrNoIdentity, cert.Subject.CommonName)
	case 1:
	default:
		return Identity{}, fmt.Errorf("%w: certificate %q has %d raftlvs URI SANs; want one", ErrNoIdentity, cert.Subject.CommonName, len(found))
	}
	id, err := ParseIdentityURI(found[0])
	if err != nil {
		return Identity{}, err
	}
	if id.Role == RoleOperator && len(cert.IPAddresses) > 0 {
		return Identity{}, fmt.Errorf("%w: operator certificate %q names addresses", ErrNoIdentity, cert.Subject.CommonName)
	}
	for _, ip := range cert.IPAddresses {
		if a, ok := netip.AddrFromSlice(ip); ok {
			id.IPs = append(id.IPs, a.Unmap())
		}
	}
	return id, nil
}

// ValidClusterID checks a cluster id for use as the host of a URI SAN: letters, digits,
// '-', '_' and '.', starting with a letter or digit, at most 64 characters. (fsm names
// also allow ':', which a URI host cannot hold; generated cluster ids are hex.)
func ValidClusterID(s string) error {
	if err := validName("cluster id", s); err != nil {
		return err
	}
	if strings.Contains(s, ":") {
		return fmt.Errorf("%w: cluster id %q: ':' cannot appear in a certificate's URI host", ErrMalformed, s)
	}
	return nil
}

// maxNameLen is fsm.MaxNameLen: ids in certificates are the fsm's director and agent ids.
const maxNameLen = 64

// validName is the fsm's rule for names: letters, digits and - _ . : (starting with a
// letter or digit), 1..64 characters. pki does not import fsm: the agent links pki.
func validName(field, s string) error {
	if s == "" || len(s) > maxNameLen {
		return fmt.Errorf("%w: %s must be 1..%d characters", ErrMalformed, field, maxNameLen)
	}
	for i, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			i > 0 && (c == '-' || c == '_' || c == '.' || c == ':')
		if !ok {
			return fmt.Errorf("%w: %s %q: use letters, digits and - _ . : (starting with a letter or digit)", ErrMalformed, field, s)
		}
	}
	return nil
}
