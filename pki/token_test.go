package pki_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/pki"
)

const testFP = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newToken(t *testing.T, spec pki.TokenSpec) (pki.Token, pki.Credential) {
	t.Helper()
	tok, cred, err := pki.NewToken(spec, testFP, t0)
	if err != nil {
		t.Fatal(err)
	}
	return tok, cred
}

func TestTokenStringsParseBackAndTheRecordKeepsOnlyAHash(t *testing.T) {
	tok, cred := newToken(t, pki.TokenSpec{Role: pki.RoleDirector, TTL: pki.DefaultTokenTTL, Description: "d2 in rack 4"})
	s := cred.Encode()
	if !strings.HasPrefix(s, "rlv1.") || len(s) != len("rlv1.")+8+1+26+1+64 {
		t.Errorf("token %q: want rlv1.<8>.<26>.<64>", s)
	}
	back, err := pki.ParseCredential(s)
	if err != nil {
		t.Fatal(err)
	}
	if back != cred || back.CAFingerprint != testFP {
		t.Errorf("parsed %+v, want %+v", back, cred)
	}
	if tok.ID != cred.ID || strings.Contains(tok.Hash, cred.Secret) || !strings.HasPrefix(tok.Hash, "sha256:") {
		t.Errorf("record %+v for credential id %s", tok, cred.ID)
	}
	if !tok.Expires.Equal(t0.Add(24*time.Hour)) || !tok.Created.Equal(t0) {
		t.Errorf("created %v expires %v", tok.Created, tok.Expires)
	}
	// Two tokens never share an id or a secret.
	_, other := newToken(t, pki.TokenSpec{Role: pki.RoleDirector, TTL: time.Hour})
	if other.ID == cred.ID || other.Secret == cred.Secret {
		t.Error("two tokens share an id or a secret")
	}
}

func TestTokenRecordsSurviveJSON(t *testing.T) {
	tok, _ := newToken(t, pki.TokenSpec{Role: pki.RoleAgent, TTL: time.Hour, Networks: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}})
	tok = tok.Revoke(t0.Add(time.Minute))
	b, err := json.Marshal(tok)
	if err != nil {
		t.Fatal(err)
	}
	var back pki.Token
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, tok) {
		t.Errorf("JSON %s read back as %+v, want %+v", b, back, tok)
	}
	never, _ := newToken(t, pki.TokenSpec{Role: pki.RoleOperator, Access: pki.AccessRead, NoExpiry: true})
	b, _ = json.Marshal(never)
	if strings.Contains(string(b), "expires") || strings.Contains(string(b), "revoked") {
		t.Errorf("a token without expiry or revocation writes them: %s", b)
	}
}

func TestCredentialsNeverPrintTheirSecret(t *testing.T) {
	_, cred := newToken(t, pki.TokenSpec{Role: pki.RoleDirector, TTL: time.Hour})
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("joining", "token", cred)
	for _, s := range []string{cred.String(), fmt.Sprint(cred), fmt.Sprintf("%v", cred), logged.String()} {
		if strings.Contains(s, cred.Secret) {
			t.Errorf("%q shows the secret", s)
		}
	}
}

func TestMalformedTokensSayWhichPartIsWrong(t *testing.T) {
	_, cred := newToken(t, pki.TokenSpec{Role: pki.RoleDirector, TTL: time.Hour})
	fp := strings.TrimPrefix(testFP, "sha256:")
	for s, says := range map[string]string{
		"":                    "empty token",
		"K10abc::node:secret": "not a raftlvs token",
		"rlv2." + cred.ID + "." + cred.Secret + "." + fp: "not supported by this version",
		"rlv1." + cred.ID + "." + cred.Secret:            "want 4 dot-separated parts",
		"rlv1.ABCDEFGH." + cred.Secret + "." + fp:        "token id must be 8 characters",
		"rlv1." + cred.ID + ".short." + fp:               "token secret must be 26 characters",
		"rlv1." + cred.ID + "." + cred.Secret + ".abc":   "CA part must be 64 lowercase hex digits",
	} {
		_, err := pki.ParseCredential(s)
		wantIs(t, fmt.Sprintf("%q", s), err, pki.ErrTokenMalformed)
		if !strings.Contains(err.Error(), says) {
			t.Errorf("%q: %q does not say %q", s, err, says)
		}
		if cred.Secret != "" && strings.Contains(err.Error(), cred.Secret) {
			t.Errorf("%q: the error quotes the secret", s)
		}
	}
}

func TestVerifyTokenChecksSecretThenRevocationThenExpiry(t *testing.T) {
	tok, cred := newToken(t, pki.TokenSpec{Role: pki.RoleAgent, TTL: time.Hour})
	revoked := tok.Revoke(t0.Add(time.Minute))
	store := map[string]pki.Token{tok.ID: tok}
	lookup := func(id string) (pki.Token, bool) { t, ok := store[id]; return t, ok }
	wrong := cred
	wrong.Secret = strings.Repeat("a", 26)
	stranger := cred
	stranger.ID = "zzzzzzzz"

	for _, tc := range []struct {
		name   string
		record pki.Token
		cred   pki.Credential
		now    time.Time
		want   error
	}{
		{"valid", tok, cred, t0.Add(59 * time.Minute), nil},
		{"wrong secret", tok, wrong, t0, pki.ErrTokenInvalid},
		{"unknown id", tok, stranger, t0, pki.ErrTokenUnknown},
		{"expired, at the expiry instant", tok, cred, t0.Add(time.Hour), pki.ErrTokenExpired},
		{"revoked", revoked, cred, t0.Add(2 * time.Minute), pki.ErrTokenRevoked},
		// Without the secret, nobody learns that a token was revoked.
		{"revoked, wrong secret", revoked, wrong, t0, pki.ErrTokenInvalid},
	} {
		store[tok.ID] = tc.record
		got, err := pki.VerifyToken(tc.cred, lookup, tc.now)
		if tc.want == nil {
			if err != nil || got.ID != tok.ID {
				t.Errorf("%s: %+v, %v", tc.name, got, err)
			}
			continue
		}
		wantIs(t, tc.name, err, tc.want)
	}
	if again := revoked.Revoke(t0.Add(time.Hour)); !again.Revoked.Equal(revoked.Revoked) {
		t.Error("revoking again moved the revocation time")
	}
}

func TestTokenSpecsThatMakeNoSenseAreRefused(t *testing.T) {
	nets := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	for name, spec := range map[string]pki.TokenSpec{
		"no role":                 {TTL: time.Hour},
		"operator without access": {Role: pki.RoleOperator, TTL: time.Hour},
		"agent with access":       {Role: pki.RoleAgent, Access: pki.AccessAdmin, TTL: time.Hour},
		"no ttl":                  {Role: pki.RoleDirector},
		"ttl and no expiry":       {Role: pki.RoleDirector, TTL: time.Hour, NoExpiry: true},
		"operator with networks":  {Role: pki.RoleOperator, Access: pki.AccessRead, TTL: time.Hour, Networks: nets},
		"control characters":      {Role: pki.RoleDirector, TTL: time.Hour, Description: "a\nb"},
	} {
		_, _, err := pki.NewToken(spec, testFP, t0)
		wantIs(t, name, err, pki.ErrBadTokenSpec)
	}
	_, _, err := pki.NewToken(pki.TokenSpec{Role: pki.RoleDirector, TTL: time.Hour}, "sha256:xyz", t0)
	wantIs(t, "bad fingerprint", err, pki.ErrMalformed)
}

func TestTokenGrantsDecideRoleAndAddressesNotTheRequester(t *testing.T) {
	src := netip.MustParseAddr("192.0.2.10")
	other := netip.MustParseAddr("192.0.2.11")
	far := netip.MustParseAddr("198.51.100.1")
	agent, _ := newToken(t, pki.TokenSpec{Role: pki.RoleAgent, TTL: time.Hour})
	fenced, _ := newToken(t, pki.TokenSpec{Role: pki.RoleAgent, TTL: time.Hour, Networks: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}})
	director, _ := newToken(t, pki.TokenSpec{Role: pki.RoleDirector, TTL: time.Hour})
	operator, _ := newToken(t, pki.TokenSpec{Role: pki.RoleOperator, Access: pki.AccessOperate, TTL: time.Hour})

	for _, tc := range []struct {
		name  string
		tok   pki.Token
		ips   []netip.Addr
		want  []netip.Addr // nil with ok=false: refused
		ok    bool
		roleW pki.Role
	}{
		{"agent, no address asked: its source", agent, nil, []netip.Addr{src}, true, pki.RoleAgent},
		{"agent, its source", agent, []netip.Addr{src}, []netip.Addr{src}, true, pki.RoleAgent},
		{"agent, another address", agent, []netip.Addr{other}, nil, false, ""},
		{"fenced agent, inside", fenced, []netip.Addr{src, other}, []netip.Addr{src, other}, true, pki.RoleAgent},
		{"fenced agent, outside", fenced, []netip.Addr{far}, nil, false, ""},
		{"director, any address", director, []netip.Addr{far}, []netip.Addr{far}, true, pki.RoleDirector},
		{"operator, no address", operator, nil, nil, true, pki.RoleOperator},
		{"operator, an address", operator, []netip.Addr{src}, nil, false, ""},
	} {
		g, err := tc.tok.Grant("n1", tc.ips, src)
		if !tc.ok {
			wantIs(t, tc.name, err, pki.ErrBadGrant)
			continue
		}
		if err != nil || g.Role != tc.roleW || g.ID != "n1" || !reflect.DeepEqual(g.IPs, tc.want) || g.Access != tc.tok.Access {
			t.Errorf("%s: grant %+v, %v", tc.name, g, err)
		}
	}
	_, err := director.Grant("bad id", nil, src)
	wantIs(t, "bad id", err, pki.ErrBadGrant)
}
