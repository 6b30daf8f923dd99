package pki

import "errors"

// Error classes, for errors.Is. Every error this package returns wraps one of them and
// says, in its text, what was wrong with which certificate, file or token.
var (
	// Peer verification: why a TLS peer was refused.
	ErrNoCertificate   = errors.New("no certificate presented")
	ErrUnknownCA       = errors.New("certificate not signed by the cluster CA")
	ErrCertExpired     = errors.New("certificate expired")
	ErrCertNotYetValid = errors.New("certificate not yet valid")
	ErrCertRevoked     = errors.New("certificate revoked")
	ErrNoIdentity      = errors.New("certificate carries no raftlvs identity")
	ErrWrongCluster    = errors.New("certificate belongs to another cluster")
	ErrWrongRole       = errors.New("certificate has the wrong role")
	ErrWrongID         = errors.New("certificate names another node")
	ErrWrongUsage      = errors.New("certificate not valid for this use")
	ErrBadChain        = errors.New("certificate chain does not verify")
	// ErrCAMismatch: the server's CA is not the one a join token pins.
	ErrCAMismatch = errors.New("server CA does not match the pinned fingerprint")

	// Files and material.
	ErrKeyPermissions = errors.New("key material readable by others")
	ErrKeyMismatch    = errors.New("certificate and private key do not match")
	ErrMalformed      = errors.New("malformed certificate, key or request")
	ErrNotCA          = errors.New("certificate is not a CA")
	ErrCAExpired      = errors.New("CA not valid at this time")

	// Issuing.
	ErrBadGrant = errors.New("certificate grant refused")

	// Tokens.
	ErrTokenMalformed = errors.New("malformed token")
	ErrTokenUnknown   = errors.New("unknown token")
	ErrTokenInvalid   = errors.New("token secret does not match")
	ErrTokenExpired   = errors.New("token expired")
	ErrTokenRevoked   = errors.New("token revoked")
	ErrBadTokenSpec   = errors.New("bad token spec")

	// API authentication (HTTP 401) and authorization (HTTP 403).
	ErrUnauthenticated = errors.New("no credentials")
	ErrForbidden       = errors.New("access denied")
)
