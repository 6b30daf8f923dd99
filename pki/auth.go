package pki

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Authenticator says who made an API request: the client certificate if there is one
// (APIServerConfig has verified it), else an operator's bearer token. Join and agent
// tokens do not authenticate API requests: the certificate-signing endpoint takes them
// through VerifyToken and Token.Grant instead.
type Authenticator struct {
	// Tokens looks a token up by id in the replicated state.
	Tokens func(id string) (Token, bool)
	// Now is the clock for token expiry; nil is time.Now.
	Now func() time.Time
}

// Authenticate returns the request's identity from its TLS state and its Authorization
// header. Errors wrap ErrUnauthenticated or a token error (answer 401) or ErrForbidden
// (403), and say what is missing.
func (a Authenticator) Authenticate(cs *tls.ConnectionState, authorization string) (Identity, error) {
	if id, ok := PeerIdentity(cs); ok {
		return id, nil
	}
	if authorization == "" {
		return Identity{}, fmt.Errorf("%w: present a client certificate, or an operator token as Authorization: Bearer (RAFTLVS_TOKEN)", ErrUnauthenticated)
	}
	scheme, raw, _ := strings.Cut(authorization, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return Identity{}, fmt.Errorf("%w: Authorization scheme %q; want Bearer <token>", ErrUnauthenticated, scheme)
	}
	c, err := ParseCredential(raw)
	if err != nil {
		return Identity{}, err
	}
	if a.Tokens == nil {
		return Identity{}, fmt.Errorf("%w: this server accepts no tokens", ErrUnauthenticated)
	}
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	t, err := VerifyToken(c, a.Tokens, now())
	if err != nil {
		return Identity{}, err
	}
	if t.Role != RoleOperator {
		return Identity{}, fmt.Errorf("%w: token %s is a %s join token; it only obtains a certificate (raftlvs %s --join … --token …)", ErrForbidden, t.ID, t.Role, t.Role)
	}
	return Identity{Role: RoleOperator, ID: "token-" + t.ID, Access: t.Access, Token: t.ID}, nil
}

// HTTPStatus is the status an API answers for an authentication or authorization error:
// 401 when credentials are missing or wrong, 403 when they are good but not enough, 0
// for other errors.
func HTTPStatus(err error) int {
	switch {
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, ErrUnauthenticated), errors.Is(err, ErrTokenMalformed), errors.Is(err, ErrTokenUnknown),
		errors.Is(err, ErrTokenInvalid), errors.Is(err, ErrTokenExpired), errors.Is(err, ErrTokenRevoked):
		return http.StatusUnauthorized
	}
	return 0
}
