package gossip

import (
	"cmp"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/hashicorp/memberlist"
)

// DefaultPort is memberlist's customary port (UDP and TCP). Firewalls between directors
// and agents must open both (MetalLB #782, #1539).
const DefaultPort = 7946

// Failure-detection defaults: a member that stops answering is reported failed in about
// one second on a LAN (measured 0.80–0.85 s with 6 members; memberlist's LAN defaults take
// 6–8 s). With SuspicionMult 2 memberlist needs no independent confirmation of a suspicion,
// so the suspect timeout is SuspicionMult·max(1, log10 N)·ProbeInterval: 0.4 s up to 10
// members, about 0.9 s with 200.
const (
	DefaultProbeInterval  = 200 * time.Millisecond
	DefaultProbeTimeout   = 100 * time.Millisecond
	DefaultSuspicionMult  = 2
	DefaultGossipInterval = 50 * time.Millisecond
)

// Other defaults.
const (
	// DefaultRejoinInterval is how often a member that knows no other live member joins
	// its configured addresses again: on start-up before any peer is up, and after it
	// lost every peer (memberlist alone never dials a dead member again).
	DefaultRejoinInterval = 5 * time.Second
	// DefaultRetainDead is how long Members keeps reporting a failed or departed member.
	// It must outlast the registrar's reap delay and maximum drain time.
	DefaultRetainDead = 10 * time.Minute
	// DefaultEventBuffer bounds the events queued for a slow consumer; beyond it they are
	// coalesced into one EventResync.
	DefaultEventBuffer = 1024
)

// ErrBadConfig classifies every configuration error returned by New.
var ErrBadConfig = errors.New("bad gossip config")

// Config is one member's place in the gossip pool.
type Config struct {
	// NodeName is the member's unique name; "" takes the ID of the meta given to New.
	// It must equal that ID: one identity per member, so a member whose meta cannot be
	// decoded is still recognised by name.
	NodeName string

	BindAddr      string // IP to listen on (UDP and TCP); "" is 0.0.0.0
	BindPort      int    // 0 picks a free port (tests); production uses DefaultPort
	AdvertiseAddr string // IP peers dial; "" is derived from the bind address
	AdvertisePort int    // 0 is the bound port

	// Join lists host:port addresses of members to join. New joins them in the
	// background and again whenever this member knows no other live member.
	Join []string

	// SecretKey encrypts all gossip (AES-GCM; 16, 24 or 32 bytes). Required: a member
	// without the key cannot join, and traffic without it is dropped.
	SecretKey []byte
	// Label keeps two clusters on one network apart (it is not a security feature).
	Label string

	ProbeInterval  time.Duration
	ProbeTimeout   time.Duration
	SuspicionMult  int
	GossipInterval time.Duration

	RejoinInterval time.Duration
	RetainDead     time.Duration
	EventBuffer    int

	Logger *slog.Logger
}

func (c Config) withDefaults(meta Meta) Config {
	if c.NodeName == "" {
		c.NodeName = meta.ID
	}
	if c.BindAddr == "" {
		c.BindAddr = "0.0.0.0"
	}
	c.ProbeInterval = cmp.Or(c.ProbeInterval, DefaultProbeInterval)
	c.ProbeTimeout = cmp.Or(c.ProbeTimeout, DefaultProbeTimeout)
	c.SuspicionMult = cmp.Or(c.SuspicionMult, DefaultSuspicionMult)
	c.GossipInterval = cmp.Or(c.GossipInterval, DefaultGossipInterval)
	c.RejoinInterval = cmp.Or(c.RejoinInterval, DefaultRejoinInterval)
	c.RetainDead = cmp.Or(c.RetainDead, DefaultRetainDead)
	c.EventBuffer = cmp.Or(c.EventBuffer, DefaultEventBuffer)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

func (c Config) validate(meta Meta) error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrBadConfig, field, fmt.Sprintf(format, args...))
	}
	if c.NodeName != meta.ID {
		return bad("NodeName", "%q differs from the meta ID %q", c.NodeName, meta.ID)
	}
	if net.ParseIP(c.BindAddr) == nil {
		return bad("BindAddr", "%q is not an IP address", c.BindAddr)
	}
	if c.AdvertiseAddr != "" && net.ParseIP(c.AdvertiseAddr) == nil {
		return bad("AdvertiseAddr", "%q is not an IP address", c.AdvertiseAddr)
	}
	if c.BindPort < 0 || c.BindPort > 65535 || c.AdvertisePort < 0 || c.AdvertisePort > 65535 {
		return bad("BindPort", "ports are 0..65535")
	}
	for _, addr := range c.Join {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return bad("Join", "%q is not host:port", addr)
		}
	}
	if err := memberlist.ValidateKey(c.SecretKey); err != nil {
		return bad("SecretKey", "%d bytes: gossip is always encrypted and needs a 16, 24 or 32-byte key", len(c.SecretKey))
	}
	if len(c.Label) > memberlist.LabelMaxSize {
		return bad("Label", "%d bytes is above memberlist's limit of %d", len(c.Label), memberlist.LabelMaxSize)
	}
	if c.ProbeInterval <= 0 || c.ProbeTimeout <= 0 || c.GossipInterval <= 0 || c.RejoinInterval <= 0 || c.RetainDead <= 0 {
		return bad("ProbeInterval", "timings must be positive")
	}
	if c.ProbeTimeout >= c.ProbeInterval {
		return bad("ProbeTimeout", "%v must be below ProbeInterval %v", c.ProbeTimeout, c.ProbeInterval)
	}
	if c.SuspicionMult < 1 {
		return bad("SuspicionMult", "must be at least 1")
	}
	if c.EventBuffer < 1 {
		return bad("EventBuffer", "must be at least 1")
	}
	return nil
}

// ErrBadKey classifies a gossip key that cannot be used.
var ErrBadKey = errors.New("bad gossip key")

// DecodeSecretKey decodes a base64 gossip key (head -c 32 /dev/urandom | base64) and checks
// its length.
func DecodeSecretKey(s string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64: %v", ErrBadKey, err)
	}
	if err := memberlist.ValidateKey(key); err != nil {
		return nil, fmt.Errorf("%w: %d bytes; it must decode to 16, 24 or 32 bytes (AES-128/192/256)", ErrBadKey, len(key))
	}
	return key, nil
}
