// Package syncd starts, stops and lists the kernel's IPVS connection-sync daemons over
// generic netlink (IPVS_CMD_NEW_DAEMON / DEL_DAEMON / GET_DAEMON), which moby/ipvs lacks.
// Every director runs a backup daemon; the Raft leader also runs the master, so that the
// connection table follows the VIP on failover.
package syncd

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"

	"github.com/raftlvs/raftlvs/director/ipvs"
)

// State is a sync daemon's role.
type State uint32

const (
	Master State = 1 // IP_VS_STATE_MASTER: sends this director's connections
	Backup State = 2 // IP_VS_STATE_BACKUP: receives the master's
)

func (s State) String() string {
	switch s {
	case Master:
		return "master"
	case Backup:
		return "backup"
	}
	return fmt.Sprintf("state(%d)", uint32(s))
}

// Config is how a daemon talks: where, with which sync id, to which group.
type Config struct {
	Interface string     // the multicast interface, e.g. "eth1"
	SyncID    uint8      // 0 on a backup accepts any sync id
	Group     netip.Addr // optional multicast group; the kernel defaults to 224.0.0.81
	Port      uint16     // optional; the kernel defaults to 8848
	TTL       uint8      // optional; the kernel defaults to 1
	MaxLen    uint16     // optional sync message size; 0 lets the kernel derive it from the MTU
}

// maxIfName is IFNAMSIZ-1: the kernel refuses longer names.
const maxIfName = 15

// Validate checks a config before it reaches the kernel.
func (c Config) Validate() error {
	switch {
	case c.Interface == "":
		return errors.New("sync daemon: interface is required")
	case len(c.Interface) > maxIfName:
		return fmt.Errorf("sync daemon: interface name %q is longer than %d bytes", c.Interface, maxIfName)
	}
	for _, r := range c.Interface {
		if r == '/' || r == ':' || r <= ' ' || r == 0x7f {
			return fmt.Errorf("sync daemon: interface name %q has a character interfaces cannot have", c.Interface)
		}
	}
	if c.Group.IsValid() {
		if !c.Group.Unmap().IsMulticast() {
			return fmt.Errorf("sync daemon: group %s is not a multicast address", c.Group)
		}
		if c.Group.Zone() != "" {
			return fmt.Errorf("sync daemon: group %s: zones are not supported, the interface says where", c.Group)
		}
	}
	return nil
}

// Daemon is a running sync daemon as the kernel reports it.
type Daemon struct {
	State State
	Config
}

// Generic netlink layout (include/uapi/linux/ip_vs.h).
const (
	familyName    = "IPVS"
	familyVersion = 1

	cmdNewDaemon = 9
	cmdDelDaemon = 10
	cmdGetDaemon = 11

	attrDaemon = 3 // IPVS_CMD_ATTR_DAEMON, nested

	daemonState      = 1 // u32
	daemonMcastIfn   = 2 // NUL-terminated string
	daemonSyncID     = 3 // u32
	daemonSyncMaxLen = 4 // u16, host order
	daemonMcastGroup = 5 // in_addr, network order
	daemonMcastGrp6  = 6 // in6_addr
	daemonMcastPort  = 7 // u16, host order
	daemonMcastTTL   = 8 // u8
)

// Client controls the sync daemons of one network namespace. It is safe for concurrent use.
type Client struct {
	mu      sync.Mutex
	conn    conn
	family  genetlink.Family
	dial    func() (conn, error) // a new socket in the same namespace
	timeout time.Duration        // callTimeout, shorter in tests
}

// conn is the part of a generic-netlink socket the client uses.
type conn interface {
	Execute(m genetlink.Message, family uint16, flags netlink.HeaderFlags) ([]genetlink.Message, error)
	SetDeadline(t time.Time) error
	Close() error
}

// callTimeout bounds one request to the kernel. Generic netlink answers within the send,
// so a reply missing this long was lost — a lab run once waited 4 minutes on a
// DEL_DAEMON, as kube-proxy did on IPVS netlink (kubernetes#71071) — and a sync daemon
// call must not wedge the leader loop behind it.
const callTimeout = 10 * time.Second

// Open connects to the IPVS generic-netlink family in the network namespace at
// netnsPath ("" for the current one). An error wraps ipvs.ErrNoIPVS when there is no IPVS.
func Open(netnsPath string) (*Client, error) {
	dial := func() (conn, error) { return dialNetns(netnsPath) }
	c, err := dialNetns(netnsPath)
	if err != nil {
		return nil, err
	}
	fam, err := c.GetFamily(familyName)
	if err != nil {
		c.Close()
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("sync daemon: netns %q: %w", netnsPath, ipvs.ErrNoIPVS)
		}
		return nil, fmt.Errorf("sync daemon: look up the IPVS family in netns %q: %w", netnsPath, err)
	}
	return &Client{conn: c, family: fam, dial: dial, timeout: callTimeout}, nil
}

func dialNetns(netnsPath string) (*genetlink.Conn, error) {
	cfg := &netlink.Config{}
	if netnsPath != "" {
		f, err := os.Open(netnsPath)
		if err != nil {
			return nil, fmt.Errorf("sync daemon: open netns %s: %w", netnsPath, err)
		}
		defer f.Close() // the socket keeps the namespace once created
		cfg.NetNS = int(f.Fd())
	}
	c, err := genetlink.Dial(cfg)
	if err != nil {
		return nil, fmt.Errorf("sync daemon: dial generic netlink in netns %q: %w", netnsPath, err)
	}
	return c, nil
}

// Close releases the socket.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn.Close()
}

// exchange sends one request and reads its answer within the timeout. A request whose
// answer did not come is sent once more on a new socket (a late answer on the old one
// would confuse the next request): each is idempotent here — a start that happened
// answers EEXIST, a stop ESRCH, a list lists.
func (c *Client) exchange(m genetlink.Message, flags netlink.HeaderFlags) ([]genetlink.Message, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	msgs, err := c.once(m, flags)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return msgs, err
	}
	fresh, derr := c.dial()
	if derr != nil {
		return nil, fmt.Errorf("no answer from the kernel within %v, and a new socket: %w", c.timeout, derr)
	}
	c.conn.Close()
	c.conn = fresh
	msgs, err = c.once(m, flags)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil, fmt.Errorf("no answer from the kernel within %v, twice: %w", c.timeout, err)
	}
	return msgs, err
}

func (c *Client) once(m genetlink.Message, flags netlink.HeaderFlags) ([]genetlink.Message, error) {
	if err := c.conn.SetDeadline(time.Now().Add(c.timeout)); err != nil {
		return nil, fmt.Errorf("set a deadline on the netlink socket: %w", err)
	}
	return c.conn.Execute(m, c.family.ID, flags)
}

// Start starts the daemon for state. A daemon of that state already running with the same
// settings is success (the call is idempotent); one running with other settings (left by
// a crashed director whose configuration changed since) is restarted with these.
func (c *Client) Start(state State, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	body, err := encodeStart(state, cfg)
	if err != nil {
		return err
	}
	err = c.execute(cmdNewDaemon, body, netlink.Request|netlink.Acknowledge)
	if errors.Is(err, syscall.EEXIST) {
		err = c.restartIfDifferent(state, cfg, body)
	}
	if err != nil {
		return fmt.Errorf("start IPVS sync daemon %s on %s syncid %d: %w", state, cfg.Interface, cfg.SyncID, err)
	}
	return nil
}

func (c *Client) restartIfDifferent(state State, cfg Config, body []byte) error {
	running, err := c.List()
	if err != nil {
		return err
	}
	for _, d := range running {
		if d.State == state && sameSettings(d.Config, cfg) {
			return nil
		}
	}
	if err := c.Stop(state); err != nil {
		return err
	}
	return c.execute(cmdNewDaemon, body, netlink.Request|netlink.Acknowledge)
}

// sameSettings compares what a running daemon reports with what is wanted; settings left
// to the kernel's default (zero) are not compared.
func sameSettings(running, want Config) bool {
	return running.Interface == want.Interface && running.SyncID == want.SyncID &&
		(!want.Group.IsValid() || running.Group == want.Group) &&
		(want.Port == 0 || running.Port == want.Port) &&
		(want.TTL == 0 || running.TTL == want.TTL) &&
		(want.MaxLen == 0 || running.MaxLen == want.MaxLen)
}

// Stop stops the daemon for state; one not running is success (ESRCH).
func (c *Client) Stop(state State) error {
	body, err := encodeStop(state)
	if err != nil {
		return err
	}
	err = c.execute(cmdDelDaemon, body, netlink.Request|netlink.Acknowledge)
	if err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop IPVS sync daemon %s: %w", state, err)
	}
	return nil
}

// List returns the running daemons (master and backup may both run).
func (c *Client) List() ([]Daemon, error) {
	msgs, err := c.exchange(genetlink.Message{
		Header: genetlink.Header{Command: cmdGetDaemon, Version: familyVersion},
	}, netlink.Request|netlink.Dump)
	if err != nil {
		return nil, fmt.Errorf("list IPVS sync daemons: %w", err)
	}
	out := make([]Daemon, 0, len(msgs))
	for _, m := range msgs {
		d, err := parseDaemon(m.Data)
		if err != nil {
			return nil, fmt.Errorf("list IPVS sync daemons: %w", err)
		}
		out = append(out, d)
	}
	return out, nil
}

func (c *Client) execute(cmd uint8, body []byte, flags netlink.HeaderFlags) error {
	_, err := c.exchange(genetlink.Message{
		Header: genetlink.Header{Command: cmd, Version: familyVersion},
		Data:   body,
	}, flags)
	return err
}

// encodeStart is the IPVS_CMD_ATTR_DAEMON attribute of a NEW_DAEMON request. The nest is
// written without NLA_F_NESTED, as ipvsadm does; the kernel accepts both.
func encodeStart(state State, cfg Config) ([]byte, error) {
	in := netlink.NewAttributeEncoder()
	in.Uint32(daemonState, uint32(state))
	in.String(daemonMcastIfn, cfg.Interface)
	in.Uint32(daemonSyncID, uint32(cfg.SyncID))
	if cfg.MaxLen != 0 {
		in.Uint16(daemonSyncMaxLen, cfg.MaxLen)
	}
	if g := cfg.Group.Unmap(); g.Is4() {
		in.Bytes(daemonMcastGroup, g.AsSlice())
	} else if g.Is6() {
		in.Bytes(daemonMcastGrp6, g.AsSlice())
	}
	if cfg.Port != 0 {
		in.Uint16(daemonMcastPort, cfg.Port)
	}
	if cfg.TTL != 0 {
		in.Uint8(daemonMcastTTL, cfg.TTL)
	}
	return nest(in)
}

// encodeStop is the attribute of a DEL_DAEMON request: the kernel needs only the state.
func encodeStop(state State) ([]byte, error) {
	in := netlink.NewAttributeEncoder()
	in.Uint32(daemonState, uint32(state))
	return nest(in)
}

func nest(in *netlink.AttributeEncoder) ([]byte, error) {
	b, err := in.Encode()
	if err != nil {
		return nil, fmt.Errorf("encode IPVS daemon attributes: %w", err)
	}
	out := netlink.NewAttributeEncoder()
	out.Bytes(attrDaemon, b)
	return out.Encode()
}

// parseDaemon reads one GET_DAEMON reply body.
func parseDaemon(b []byte) (Daemon, error) {
	var d Daemon
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return d, fmt.Errorf("parse IPVS daemon reply: %w", err)
	}
	found := false
	for ad.Next() {
		if ad.Type() != attrDaemon {
			continue
		}
		found = true
		ad.Nested(func(nad *netlink.AttributeDecoder) error {
			for nad.Next() {
				switch nad.Type() {
				case daemonState:
					d.State = State(nad.Uint32())
				case daemonMcastIfn:
					d.Interface = nad.String()
				case daemonSyncID:
					d.SyncID = uint8(nad.Uint32())
				case daemonSyncMaxLen:
					d.MaxLen = nad.Uint16()
				case daemonMcastGroup, daemonMcastGrp6:
					a, ok := netip.AddrFromSlice(nad.Bytes())
					if !ok {
						return fmt.Errorf("multicast group of %d bytes", len(nad.Bytes()))
					}
					d.Group = a
				case daemonMcastPort:
					d.Port = nad.Uint16()
				case daemonMcastTTL:
					d.TTL = nad.Uint8()
				}
			}
			return nil
		})
	}
	if err := ad.Err(); err != nil {
		return d, fmt.Errorf("parse IPVS daemon reply: %w", err)
	}
	if !found || d.State == 0 {
		return d, errors.New("parse IPVS daemon reply: no daemon attribute")
	}
	return d, nil
}
