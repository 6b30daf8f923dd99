package api

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"time"
)

// TokenRequest is POST /v1/tokens: what `raftlvs token create` asks for.
type TokenRequest struct {
	Role   string `json:"role"`             // director, agent or operator
	Access string `json:"access,omitempty"` // operator tokens: read, operate or admin
	// TTL is a Go duration ("24h"); "0" or "0s" is a token that never expires; empty is
	// the default, 24 h.
	TTL         string         `json:"ttl,omitempty"`
	Networks    []netip.Prefix `json:"networks,omitempty"` // agent tokens: the addresses it may certify
	Description string         `json:"description,omitempty"`
}

// TokenInfo is a token as the API shows it: never its secret, nor its hash.
type TokenInfo struct {
	ID          string         `json:"id"`
	Role        string         `json:"role"`
	Access      string         `json:"access,omitempty"`
	Networks    []netip.Prefix `json:"networks,omitempty"`
	Created     time.Time      `json:"created"`
	Expires     time.Time      `json:"expires,omitzero"`
	Revoked     time.Time      `json:"revoked,omitzero"`
	SingleUse   bool           `json:"single_use,omitempty"`
	Used        time.Time      `json:"used,omitzero"`
	UsedBy      string         `json:"used_by,omitempty"`
	Description string         `json:"description,omitempty"`
	// State is valid, expired, revoked or used, by the director's clock.
	State string `json:"state"`
}

// TokenCreated answers POST /v1/tokens: the token string, shown once.
type TokenCreated struct {
	Token string    `json:"token"`
	Info  TokenInfo `json:"info"`
}

// TokenList answers GET /v1/tokens.
type TokenList struct {
	Tokens []TokenInfo `json:"tokens"`
}

// CertificateRequest is POST /v1/certificates: a joiner's request, with its join token as
// Authorization: Bearer, or a renewal over mutual TLS with the current certificate.
type CertificateRequest struct {
	ID  string       `json:"id"`            // the node id to certify
	CSR string       `json:"csr"`           // PEM CERTIFICATE REQUEST; the key stays on the node
	IPs []netip.Addr `json:"ips,omitempty"` // the addresses to name (an agent's real servers)
}

// CertificateResponse carries the signed certificate and the CA, both PEM.
type CertificateResponse struct {
	Certificate string `json:"certificate"`
	CA          string `json:"ca"`
}

// CreateToken makes a token (admin).
func (c *Client) CreateToken(ctx context.Context, req TokenRequest) (*TokenCreated, error) {
	return call[TokenCreated](ctx, c, http.MethodPost, "/v1/tokens", req)
}

// Tokens lists the tokens (admin).
func (c *Client) Tokens(ctx context.Context) ([]TokenInfo, error) {
	out, err := call[TokenList](ctx, c, http.MethodGet, "/v1/tokens", nil)
	if err != nil {
		return nil, err
	}
	return out.Tokens, nil
}

// RevokeToken revokes a token (admin); with remove set it forgets it instead.
func (c *Client) RevokeToken(ctx context.Context, id string, remove bool) error {
	path := "/v1/tokens/" + url.PathEscape(id)
	if remove {
		path += "?remove=true"
	}
	return c.do(ctx, http.MethodDelete, path, nil, nil)
}

// RequestCertificate asks the cluster to sign a certificate request.
func (c *Client) RequestCertificate(ctx context.Context, req CertificateRequest) (*CertificateResponse, error) {
	return call[CertificateResponse](ctx, c, http.MethodPost, "/v1/certificates", req)
}
