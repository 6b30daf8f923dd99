package cluster

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

func validConfig() Config {
	return Config{NodeID: "d1", DataDir: "/var/lib/raftlvs", RaftBind: "127.0.0.1:7000", APIAddr: "127.0.0.1:8000"}
}

func TestConfigDefaultsAreValidAndMatchTheDesign(t *testing.T) {
	c := validConfig().withDefaults()
	if err := c.validate(); err != nil {
		t.Fatalf("defaults rejected: %v", err)
	}
	if c.HeartbeatTimeout != 300*time.Millisecond || c.ElectionTimeout != 300*time.Millisecond ||
		c.LeaderLeaseTimeout != 150*time.Millisecond || c.CommitTimeout != 10*time.Millisecond {
		t.Fatalf("timings %v/%v/%v/%v, want 300ms/300ms/150ms/10ms", c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout, c.CommitTimeout)
	}
}

func TestConfigValidationNamesTheWrongField(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(*Config)
		field  string
	}{
		{"empty node id", func(c *Config) { c.NodeID = "" }, "NodeID"},
		{"node id with a space", func(c *Config) { c.NodeID = "d 1" }, "NodeID"},
		{"no data dir", func(c *Config) { c.DataDir = "" }, "DataDir"},
		{"raft bind without port", func(c *Config) { c.RaftBind = "127.0.0.1" }, "RaftBind"},
		{"no api address", func(c *Config) { c.APIAddr = "" }, "APIAddr"},
		{"bad advertise", func(c *Config) { c.RaftAdvertise = "host" }, "RaftAdvertise"},
		{"bad gossip address", func(c *Config) { c.GossipAddr = "host" }, "GossipAddr"},
		{"heartbeat below raft floor", func(c *Config) { c.HeartbeatTimeout = time.Millisecond }, "HeartbeatTimeout"},
		{"commit timeout below raft floor", func(c *Config) { c.CommitTimeout = time.Microsecond }, "CommitTimeout"},
		{"lease longer than heartbeat", func(c *Config) { c.LeaderLeaseTimeout = time.Second }, "LeaderLeaseTimeout"},
		{"election shorter than heartbeat", func(c *Config) {
			c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout = time.Second, 600*time.Millisecond, 100*time.Millisecond
		}, "ElectionTimeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.modify(&c)
			err := c.withDefaults().validate()
			if !errors.Is(err, ErrBadConfig) {
				t.Fatalf("error %v, want one wrapping ErrBadConfig", err)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a *ConfigError", err)
			}
			if ce.Field != tc.field {
				t.Fatalf("error %v names field %q, want %q", err, ce.Field, tc.field)
			}
		})
	}
}

func TestConfigBadNodeIDKeepsTheFSMClassification(t *testing.T) {
	c := validConfig()
	c.NodeID = "-d1"
	if err := c.withDefaults().validate(); !errors.Is(err, fsm.ErrInvalid) {
		t.Fatalf("error %v, want one wrapping fsm.ErrInvalid too", err)
	}
}

func TestOpenRejectsBadConfigBeforeTouchingDisk(t *testing.T) {
	c := validConfig()
	c.DataDir = filepath.Join(t.TempDir(), "never-created")
	c.LeaderLeaseTimeout = 2 * time.Second
	if _, err := Open(c); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("Open: %v, want ErrBadConfig", err)
	}
	if _, err := os.Stat(c.DataDir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("data dir after a rejected config: %v, want it never created", err)
	}
}

func TestConfigWithSeveralBadFieldsAlwaysNamesTheSameOne(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(*Config)
		field  string
	}{
		{"every address wrong", func(c *Config) {
			c.RaftBind, c.RaftAdvertise, c.APIAddr, c.GossipAddr = "a", "b", "c", "d"
		}, "RaftBind"},
		{"every timing below the floor", func(c *Config) {
			c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout, c.SnapshotInterval = time.Millisecond, time.Millisecond, time.Millisecond, time.Millisecond
		}, "HeartbeatTimeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Go randomises map iteration: a check that loops over a map names a
			// different field from run to run, which 50 runs would show.
			for range 50 {
				c := validConfig()
				tc.modify(&c)
				var ce *ConfigError
				if err := c.withDefaults().validate(); !errors.As(err, &ce) || ce.Field != tc.field {
					t.Fatalf("error %v, want one naming %s", err, tc.field)
				}
			}
		})
	}
}
