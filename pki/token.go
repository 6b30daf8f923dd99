package pki

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"
	"unicode"
)

// A token, as its holder has it, is one string:
//
//	rlv1.<id>.<secret>.<ca>
//
//	rlv1    format version; also lets secret scanners recognise a raftlvs token
//	id      8 characters [a-z2-7] (40 random bits): names the token, public
//	secret  26 characters [a-z2-7] (128 random bits)
//	ca      64 hex digits: SHA-256 of the cluster CA certificate (DER)
//
// kubeadm's id.secret plus the CA hash it passes separately
// (--discovery-token-ca-cert-hash), in one string as k3s does (K10<ca hash>::<id>:<secret>):
// a joiner needs nothing else to pin the CA on first contact and authenticate. Dots
// keep it one shell word and one double-click. The cluster stores only the SHA-256 of
// the secret: 128 random bits need no salt or slow hash.
const (
	tokenPrefix    = "rlv1"
	tokenIDLen     = 8
	tokenSecretLen = 26
	maxDescription = 200
)

// b32 is lowercase RFC 4648 base32 without padding: letters and 2-7 only.
var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Credential is a token as its holder presents it.
type Credential struct {
	ID            string
	Secret        string
	CAFingerprint string // "sha256:<hex>"
}

// ParseCredential reads a token string. Its errors wrap ErrTokenMalformed and say which
// part is wrong; they never quote the secret.
func ParseCredential(s string) (Credential, error) {
	bad := func(format string, args ...any) (Credential, error) {
		return Credential{}, fmt.Errorf("%w: %s", ErrTokenMalformed, fmt.Sprintf(format, args...))
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return bad("empty token")
	}
	parts := strings.Split(s, ".")
	if parts[0] != tokenPrefix {
		if strings.HasPrefix(parts[0], "rlv") {
			return bad("token format %q is not supported by this version (want %s)", parts[0], tokenPrefix)
		}
		return bad("not a raftlvs token: it must start with %s.", tokenPrefix)
	}
	if len(parts) != 4 {
		return bad("want 4 dot-separated parts %s.<id>.<secret>.<ca-sha256>, got %d", tokenPrefix, len(parts))
	}
	c := Credential{ID: parts[1], Secret: parts[2], CAFingerprint: "sha256:" + parts[3]}
	if !isB32(c.ID, tokenIDLen) {
		return bad("token id must be %d characters of a-z and 2-7", tokenIDLen)
	}
	if !isB32(c.Secret, tokenSecretLen) {
		return bad("token secret must be %d characters of a-z and 2-7", tokenSecretLen)
	}
	if err := checkFingerprint(c.CAFingerprint); err != nil {
		return bad("the CA part must be 64 lowercase hex digits")
	}
	return c, nil
}

// Encode is the token string, secret included: print it once, to the operator.
func (c Credential) Encode() string {
	return tokenPrefix + "." + c.ID + "." + c.Secret + "." + strings.TrimPrefix(c.CAFingerprint, "sha256:")
}

// String never shows the secret, so a credential in a log line or an error leaks nothing.
func (c Credential) String() string { return tokenPrefix + "." + c.ID + ".<secret>" }

// LogValue keeps the secret out of slog output.
func (c Credential) LogValue() slog.Value { return slog.StringValue(c.String()) }

func isB32(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '2' && r <= '7') {
			return false
		}
	}
	return true
}

// Token is the cluster's record of a token, stored in the replicated state. It holds
// the secret's hash, never the secret.
type Token struct {
	ID     string `json:"id"`
	Role   Role   `json:"role"`
	Access Access `json:"access,omitempty"` // operator tokens
	// Networks, if set, bound the addresses a certificate obtained with the token may
	// name (an agent's real servers). See Grant.
	Networks    []netip.Prefix `json:"networks,omitempty"`
	Hash        string         `json:"hash"` // "sha256:<hex>" of the secret
	Created     time.Time      `json:"created"`
	Expires     time.Time      `json:"expires,omitzero"` // zero: never
	Revoked     time.Time      `json:"revoked,omitzero"` // zero: not revoked
	Description string         `json:"description,omitempty"`
}

// TokenSpec is what `raftlvs token create` asks for.
type TokenSpec struct {
	Role   Role
	Access Access // operator tokens: required; other roles: none
	// TTL is the token's lifetime; it must be positive unless NoExpiry is set (the
	// CLI's --ttl 0). DefaultTokenTTL is the CLI's default.
	TTL         time.Duration
	NoExpiry    bool
	Networks    []netip.Prefix
	Description string
}

// DefaultTokenTTL is kubeadm's: a join token is for joining now, not for keeping.
const DefaultTokenTTL = 24 * time.Hour

// NewToken makes a token: the record to store (its Created and Expires taken from now,
// the leader's clock when it logs the record) and the credential to give the operator.
func NewToken(spec TokenSpec, caFingerprint string, now time.Time) (Token, Credential, error) {
	if err := spec.validate(); err != nil {
		return Token{}, Credential{}, err
	}
	if err := checkFingerprint(caFingerprint); err != nil {
		return Token{}, Credential{}, err
	}
	c := Credential{ID: randomB32(5), Secret: randomB32(16), CAFingerprint: caFingerprint}
	t := Token{
		ID: c.ID, Role: spec.Role, Access: spec.Access, Networks: spec.Networks,
		Hash: hashSecret(c.Secret), Created: now.UTC(), Description: spec.Description,
	}
	if !spec.NoExpiry {
		t.Expires = now.Add(spec.TTL).UTC()
	}
	return t, c, nil
}

func (s TokenSpec) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadTokenSpec, fmt.Sprintf(format, args...))
	}
	if _, err := ParseRole(string(s.Role)); err != nil {
		return bad("%v", err)
	}
	switch {
	case s.Role == RoleOperator && s.Access.rank() == 0:
		return bad("an operator token needs an access level: read, operate or admin")
	case s.Role != RoleOperator && s.Access != AccessNone:
		return bad("only operator tokens carry an access level; a %s token has its role's", s.Role)
	case s.NoExpiry && s.TTL != 0:
		return bad("a TTL and no expiry are exclusive")
	case !s.NoExpiry && s.TTL <= 0:
		return bad("ttl must be positive (or choose no expiry)")
	case s.Role == RoleOperator && len(s.Networks) > 0:
		return bad("networks bound the addresses of director and agent certificates; operator tokens have none")
	case len(s.Description) > maxDescription:
		return bad("description longer than %d bytes", maxDescription)
	case strings.ContainsFunc(s.Description, unicode.IsControl):
		return bad("description has control characters")
	}
	for _, p := range s.Networks {
		if !p.IsValid() {
			return bad("invalid network %v", p)
		}
	}
	return nil
}

// randomB32 is n random bytes in base32.
func randomB32(n int) string {
	b := make([]byte, n)
	rand.Read(b) // crypto/rand does not fail
	return b32.EncodeToString(b)
}

func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Check verifies a presented credential against the record, at now: the secret first
// (in constant time), so that only the token's holder learns that it expired or was
// revoked.
func (t Token) Check(c Credential, now time.Time) error {
	want, err := hex.DecodeString(strings.TrimPrefix(t.Hash, "sha256:"))
	if err != nil || !strings.HasPrefix(t.Hash, "sha256:") || len(want) != sha256.Size {
		return fmt.Errorf("%w: token %s: stored hash is not sha256:<hex>", ErrTokenMalformed, t.ID)
	}
	got := sha256.Sum256([]byte(c.Secret))
	if c.ID != t.ID || subtle.ConstantTimeCompare(got[:], want) != 1 {
		return fmt.Errorf("%w: token %s", ErrTokenInvalid, c.ID)
	}
	if !t.Revoked.IsZero() {
		return fmt.Errorf("%w: token %s was revoked at %s", ErrTokenRevoked, t.ID, t.Revoked.UTC().Format(time.RFC3339))
	}
	if t.Expired(now) {
		return fmt.Errorf("%w: token %s expired at %s; create a new one with raftlvs token create", ErrTokenExpired, t.ID, t.Expires.UTC().Format(time.RFC3339))
	}
	return nil
}

// Expired reports whether the token has expired at now.
func (t Token) Expired(now time.Time) bool { return !t.Expires.IsZero() && !now.Before(t.Expires) }

// Revoke is the record revoked at now (revoking again keeps the first time).
func (t Token) Revoke(now time.Time) Token {
	if t.Revoked.IsZero() {
		t.Revoked = now.UTC()
	}
	return t
}

// VerifyToken finds the credential's record with lookup (the replicated state's) and
// checks it at now.
func VerifyToken(c Credential, lookup func(id string) (Token, bool), now time.Time) (Token, error) {
	t, ok := lookup(c.ID)
	if !ok {
		return Token{}, fmt.Errorf("%w: token %s (never created, or deleted)", ErrTokenUnknown, c.ID)
	}
	if err := t.Check(c, now); err != nil {
		return Token{}, err
	}
	return t, nil
}

// Grant is what a certificate requested with this token may say: the token's role and
// access, the id asked for, and addresses. If the token has Networks, every address must
// lie in one. If not, an agent may name only the address its request came from (source;
// none asked means that one), because the addresses in an agent's certificate are the
// real servers it may register; a director's addresses are informative (directors are
// checked by role) and pass as asked. Operators name none.
func (t Token) Grant(id string, ips []netip.Addr, source netip.Addr) (Grant, error) {
	g := Grant{Role: t.Role, ID: id, Access: t.Access}
	if err := validName("id", id); err != nil {
		return Grant{}, fmt.Errorf("%w: %w", ErrBadGrant, err)
	}
	source = source.Unmap()
	for _, ip := range ips {
		ip = ip.Unmap()
		if !ip.IsValid() {
			return Grant{}, fmt.Errorf("%w: invalid address", ErrBadGrant)
		}
		g.IPs = append(g.IPs, ip)
	}
	switch {
	case t.Role == RoleOperator:
		if len(g.IPs) > 0 {
			return Grant{}, fmt.Errorf("%w: operator certificates name no addresses", ErrBadGrant)
		}
	case len(t.Networks) > 0:
		for _, ip := range g.IPs {
			if !inAny(t.Networks, ip) {
				return Grant{}, fmt.Errorf("%w: %s is outside the networks token %s allows (%v)", ErrBadGrant, ip, t.ID, t.Networks)
			}
		}
	case t.Role == RoleAgent:
		if len(g.IPs) == 0 && source.IsValid() {
			g.IPs = []netip.Addr{source}
		}
		for _, ip := range g.IPs {
			if ip != source {
				return Grant{}, fmt.Errorf("%w: agent %s asks for %s but connects from %s; a token made with --network allows other addresses", ErrBadGrant, id, ip, source)
			}
		}
	}
	if t.Role == RoleAgent && len(g.IPs) == 0 {
		return Grant{}, fmt.Errorf("%w: agent %s names no address", ErrBadGrant, id)
	}
	return g, nil
}

func inAny(nets []netip.Prefix, ip netip.Addr) bool {
	for _, n := range nets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}
