package realserver

import (
	"errors"
	"net/netip"
	"path/filepath"
	"testing"
)

func TestNewDaemonRefusesABadAgentBeforeItJoinsAnyone(t *testing.T) {
	good := Config{ID: "rs1", Addr: netip.MustParseAddr("192.0.2.21"), Services: []ServiceSpec{{Name: "web", Weight: 1}},
		StateFile: filepath.Join(t.TempDir(), "agent.json")}
	tests := []struct {
		name string
		edit func(*DaemonConfig)
	}{
		{"no services", func(c *DaemonConfig) { c.Agent.Services = nil }},
		{"loopback address", func(c *DaemonConfig) { c.Agent.Addr = netip.MustParseAddr("127.0.0.1") }},
		{"no director to join", func(c *DaemonConfig) { c.Join = nil }},
		{"bad gossip address", func(c *DaemonConfig) { c.GossipBind = "192.0.2.21" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DaemonConfig{Agent: good, Join: []string{"192.0.2.1:7946"}, GossipKey: make([]byte, 32), Host: NewFakeHost()}
			tt.edit(&cfg)
			if _, err := NewDaemon(cfg); !errors.Is(err, ErrBadSpec) {
				t.Fatalf("NewDaemon: %v, want ErrBadSpec", err)
			}
		})
	}
}

func TestAgentMetaJoinsDrainingWithWhatItServes(t *testing.T) {
	m := AgentMeta(Config{ID: "rs1", Addr: netip.MustParseAddr("::ffff:192.0.2.21"),
		Services: []ServiceSpec{{Name: "web", Port: 8080, Weight: 3}, {Name: "dns", Weight: 1}}})
	if !m.Draining || m.Addr != netip.MustParseAddr("192.0.2.21") || len(m.Services) != 2 || m.Services[0].Port != 8080 || m.Services[0].Weight != 3 {
		t.Fatalf("meta %+v", m)
	}
}
