package fsm

import (
	"cmp"
	"encoding/hex"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"time"
)

// The cluster's trust lives in the replicated state beside the rules: join and operator
// tokens (hashes only), the cluster CA (so that any leader can sign), and the
// certificates the cluster issued (an agent's certified addresses, a removed director's
// revoked serial). The fsm keeps them as plain records and checks their shape; package
// pki, which the fsm does not import, gives them their meaning.

const (
	TypePutToken          CommandType = 17
	TypeRevokeToken       CommandType = 18
	TypeDeleteToken       CommandType = 19
	TypeSetCA             CommandType = 20
	TypeRecordCertificate CommandType = 21
	TypeRevokeCertificate CommandType = 22
)

// Roles a token or a certificate gives (pki.Role's values).
const (
	RoleDirector = "director"
	RoleAgent    = "agent"
	RoleOperator = "operator"
)

// Token is the cluster's record of a token: pki.Token's fields and JSON, plus when a
// single-use token was used. It holds the SHA-256 of the secret, never the secret.
type Token struct {
	ID          string         `json:"id"`
	Role        string         `json:"role"`
	Access      string         `json:"access,omitempty"`
	Networks    []netip.Prefix `json:"networks,omitempty"`
	Hash        string         `json:"hash"`
	Created     time.Time      `json:"created"`
	Expires     time.Time      `json:"expires,omitzero"`
	Revoked     time.Time      `json:"revoked,omitzero"`
	Description string         `json:"description,omitempty"`
	// SingleUse tokens (director tokens) obtain one certificate; Used is when, and
	// UsedBy the node id it was issued to.
	SingleUse bool      `json:"single_use,omitempty"`
	Used      time.Time `json:"used,omitzero"`
	UsedBy    string    `json:"used_by,omitempty"`
}

// ClusterCA is the cluster's signing CA: its certificate and private key, PEM. The key
// is the cluster's most sensitive secret: it travels only inside Raft (the log and its
// snapshots), and nothing that serves or prints the state includes it.
type ClusterCA struct {
	CertPEM string `json:"cert_pem"`
	KeyPEM  string `json:"key_pem"`
}

// String leaves the key out, so a ClusterCA in a log line or an error leaks nothing.
func (c ClusterCA) String() string { return "cluster CA (key withheld)" }

// Certificate is the record of a certificate the cluster issued or revoked, by serial
// (lowercase hex, as pki prints it). An agent's records name the addresses its
// certificates certify: the registrar accepts gossip metadata only for those.
type Certificate struct {
	Serial   string       `json:"serial"`
	Role     string       `json:"role,omitempty"`
	ID       string       `json:"id,omitempty"`
	IPs      []netip.Addr `json:"ips,omitempty"`
	NotAfter time.Time    `json:"not_after,omitzero"`
	// Revoked is when it was revoked; zero while it is good. A revocation of a serial the
	// cluster never recorded (an operator's own PKI) is a record with only Serial and
	// Revoked.
	Revoked time.Time `json:"revoked,omitzero"`
}

// PutToken stores a new token record.
type PutToken struct {
	Token Token `json:"token"`
}

// RevokeToken revokes a token at At; with Used set it marks a single-use token used by
// UsedBy instead (the certificate-signing endpoint logs it in one batch with the
// certificate's record).
type RevokeToken struct {
	ID     string    `json:"id"`
	At     time.Time `json:"at"`
	Used   bool      `json:"used,omitempty"`
	UsedBy string    `json:"used_by,omitempty"`
}

// DeleteToken forgets a token record.
type DeleteToken struct {
	ID string `json:"id"`
}

// SetCA installs or replaces the cluster's signing CA.
type SetCA struct {
	CA ClusterCA `json:"ca"`
}

// RecordCertificate records a certificate the cluster issued.
type RecordCertificate struct {
	Certificate Certificate `json:"certificate"`
}

// RevokeCertificate revokes the certificate with Serial at At.
type RevokeCertificate struct {
	Serial string    `json:"serial"`
	At     time.Time `json:"at"`
}

func (PutToken) Type() CommandType          { return TypePutToken }
func (RevokeToken) Type() CommandType       { return TypeRevokeToken }
func (DeleteToken) Type() CommandType       { return TypeDeleteToken }
func (SetCA) Type() CommandType             { return TypeSetCA }
func (RecordCertificate) Type() CommandType { return TypeRecordCertificate }
func (RevokeCertificate) Type() CommandType { return TypeRevokeCertificate }

// trustState is the part of State that the commands above change.
type trustState struct {
	tokens map[string]Token
	ca     ClusterCA
	certs  map[string]Certificate // by serial
}

func newTrustState() trustState {
	return trustState{tokens: map[string]Token{}, certs: map[string]Certificate{}}
}

// clone copies the maps; the records' slices are never changed in place.
func (t trustState) clone() trustState {
	return trustState{tokens: maps.Clone(t.tokens), ca: t.ca, certs: maps.Clone(t.certs)}
}

func (t trustState) equal(o trustState) bool {
	eq := func(a, b any) bool { return reflect.DeepEqual(a, b) }
	return t.ca == o.ca && maps.EqualFunc(t.tokens, o.tokens, func(a, b Token) bool { return eq(a, b) }) &&
		maps.EqualFunc(t.certs, o.certs, func(a, b Certificate) bool { return eq(a, b) })
}

// Token returns the token record with this id.
func (s *State) Token(id string) (Token, bool) {
	t, ok := s.trust.tokens[id]
	return t, ok
}

// Tokens returns every token record, by id.
func (s *State) Tokens() []Token {
	return slices.SortedFunc(maps.Values(s.trust.tokens), func(a, b Token) int { return cmp.Compare(a.ID, b.ID) })
}

// CA returns the cluster's signing CA, if one was installed.
func (s *State) CA() (ClusterCA, bool) { return s.trust.ca, s.trust.ca.CertPEM != "" }

// Certificate returns the record of the certificate with this serial.
func (s *State) Certificate(serial string) (Certificate, bool) {
	c, ok := s.trust.certs[serial]
	return c, ok
}

// Certificates returns every certificate record, by serial.
func (s *State) Certificates() []Certificate {
	return slices.SortedFunc(maps.Values(s.trust.certs), func(a, b Certificate) int { return cmp.Compare(a.Serial, b.Serial) })
}

// CertificateRevoked reports whether the certificate with this serial was revoked.
func (s *State) CertificateRevoked(serial string) bool {
	c, ok := s.trust.certs[serial]
	return ok && !c.Revoked.IsZero()
}

// CertifiedAddrs lists the addresses that the good (recorded, unrevoked, unexpired at
// now) certificates of role and id name.
func (s *State) CertifiedAddrs(role, id string, now time.Time) []netip.Addr {
	var out []netip.Addr
	for _, c := range s.trust.certs {
		if c.Role == role && c.ID == id && c.Revoked.IsZero() && now.Before(c.NotAfter) {
			out = append(out, c.IPs...)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

func checkRole(field, role string) error {
	switch role {
	case RoleDirector, RoleAgent, RoleOperator:
		return nil
	}
	return invalid(field, "unknown role %q (want director, agent or operator)", role)
}

// checkSerial accepts a certificate serial in lowercase hex.
func checkSerial(serial string) error {
	if serial == "" || len(serial) > 64 || strings.ToLower(serial) != serial {
		return invalid("serial", "%q: want 1..64 lowercase hex digits", serial)
	}
	if _, err := hex.DecodeString(strings.Repeat("0", len(serial)%2) + serial); err != nil {
		return invalid("serial", "%q: want 1..64 lowercase hex digits", serial)
	}
	return nil
}

func (c PutToken) check(s *State) error {
	t := c.Token
	if len(t.ID) != 8 || strings.Trim(t.ID, "abcdefghijklmnopqrstuvwxyz234567") != "" {
		return invalid("id", "%q: a token id is 8 characters of a-z and 2-7", t.ID)
	}
	if err := checkRole("role", t.Role); err != nil {
		return err
	}
	if h, ok := strings.CutPrefix(t.Hash, "sha256:"); !ok || len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" {
		return invalid("hash", "want sha256: and 64 lowercase hex digits")
	}
	switch {
	case t.Role == RoleOperator && t.Access != "read" && t.Access != "operate" && t.Access != "admin":
		return invalid("access", "an operator token needs read, operate or admin, not %q", t.Access)
	case t.Role != RoleOperator && t.Access != "":
		return invalid("access", "only operator tokens carry an access level")
	case t.Created.IsZero():
		return invalid("created", "required")
	case !t.Used.IsZero() || t.UsedBy != "":
		return invalid("used", "a new token has not been used")
	}
	if _, ok := s.trust.tokens[t.ID]; ok {
		return exists("id", "token %s exists", t.ID)
	}
	return nil
}

func (c PutToken) mutate(s *State) { s.changeTrust(); s.trust.tokens[c.Token.ID] = c.Token }

func (c RevokeToken) check(s *State) error {
	t, ok := s.trust.tokens[c.ID]
	switch {
	case !ok:
		return notFound("id", "no token %s", c.ID)
	case c.At.IsZero():
		return invalid("at", "required")
	case c.Used && !t.SingleUse:
		return invalid("used", "token %s is not single-use", c.ID)
	case c.Used && !t.Used.IsZero():
		return conflict("id", "token %s was used already, by %s", c.ID, t.UsedBy)
	case !c.Used && c.UsedBy != "":
		return invalid("used_by", "only a use names a node")
	}
	return nil
}

func (c RevokeToken) mutate(s *State) {
	s.changeTrust()
	t := s.trust.tokens[c.ID]
	switch {
	case c.Used:
		t.Used, t.UsedBy = c.At, c.UsedBy
	case t.Revoked.IsZero():
		t.Revoked = c.At // revoking again keeps the first time
	}
	s.trust.tokens[c.ID] = t
}

func (c DeleteToken) check(s *State) error {
	if _, ok := s.trust.tokens[c.ID]; !ok {
		return notFound("id", "no token %s", c.ID)
	}
	return nil
}

func (c DeleteToken) mutate(s *State) { s.changeTrust(); delete(s.trust.tokens, c.ID) }

func (c SetCA) check(*State) error {
	switch {
	case !strings.Contains(c.CA.CertPEM, "-----BEGIN CERTIFICATE-----"):
		return invalid("ca.cert_pem", "want a PEM certificate")
	case !strings.Contains(c.CA.KeyPEM, "PRIVATE KEY-----"):
		return invalid("ca.key_pem", "want a PEM private key")
	}
	return nil
}

func (c SetCA) mutate(s *State) { s.changeTrust(); s.trust.ca = c.CA }

func (c RecordCertificate) check(s *State) error {
	cert := c.Certificate
	if err := checkSerial(cert.Serial); err != nil {
		return err
	}
	if err := checkRole("role", cert.Role); err != nil {
		return err
	}
	if err := validateName("id", cert.ID); err != nil {
		return err
	}
	switch {
	case cert.NotAfter.IsZero():
		return invalid("not_after", "required")
	case !cert.Revoked.IsZero():
		return invalid("revoked", "record a certificate, then revoke it")
	}
	for _, ip := range cert.IPs {
		if !ip.IsValid() || ip.Zone() != "" {
			return invalid("ips", "%v is not an address", ip)
		}
	}
	if _, ok := s.trust.certs[cert.Serial]; ok {
		return exists("serial", "certificate %s is recorded", cert.Serial)
	}
	return nil
}

func (c RecordCertificate) mutate(s *State) {
	s.changeTrust()
	s.trust.certs[c.Certificate.Serial] = c.Certificate
}

func (c RevokeCertificate) check(*State) error {
	if err := checkSerial(c.Serial); err != nil {
		return err
	}
	if c.At.IsZero() {
		return invalid("at", "required")
	}
	return nil
}

func (c RevokeCertificate) mutate(s *State) {
	s.changeTrust()
	cert, ok := s.trust.certs[c.Serial]
	if !ok {
		cert = Certificate{Serial: c.Serial}
	}
	if cert.Revoked.IsZero() {
		cert.Revoked = c.At
	}
	s.trust.certs[c.Serial] = cert
}

// trustSnapshot is the trust part of a snapshot.
type trustSnapshot struct {
	Tokens       []Token       `json:"tokens,omitempty"`
	CA           *ClusterCA    `json:"ca,omitempty"`
	Certificates []Certificate `json:"certificates,omitempty"`
}

func (s *State) trustSnapshot() trustSnapshot {
	ts := trustSnapshot{Tokens: s.Tokens(), Certificates: s.Certificates()}
	if ca, ok := s.CA(); ok {
		ts.CA = &ca
	}
	return ts
}

// restoreTrust checks each record as its command would and installs it.
func (s *State) restoreTrust(ts trustSnapshot) error {
	for _, t := range ts.Tokens {
		used := Token{Used: t.Used, UsedBy: t.UsedBy}
		t.Used, t.UsedBy = time.Time{}, ""
		if err := (PutToken{Token: t}).check(s); err != nil {
			return err
		}
		t.Used, t.UsedBy = used.Used, used.UsedBy
		s.trust.tokens[t.ID] = t
	}
	if ts.CA != nil {
		if err := (SetCA{CA: *ts.CA}).check(s); err != nil {
			return err
		}
		s.trust.ca = *ts.CA
	}
	for _, c := range ts.Certificates {
		if c.Role == "" && c.ID == "" {
			// A revocation of a serial never recorded.
			if err := (RevokeCertificate{Serial: c.Serial, At: c.Revoked}).check(s); err != nil {
				return err
			}
		} else {
			rec := c
			rec.Revoked = time.Time{}
			if err := (RecordCertificate{Certificate: rec}).check(s); err != nil {
				return err
			}
		}
		s.trust.certs[c.Serial] = c
	}
	return nil
}
