package daemon

import (
	"errors"
	"net"
	"path/filepath"
	"testing"
)

func TestNewRefusesOptionsThatCannotWork(t *testing.T) {
	key := make([]byte, 32)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	tests := []struct {
		name   string
		opts   Options
		option string // "" when it is not an option error
	}{
		{"bootstrap and join", Options{ID: "d1", Bootstrap: true, Join: []string{"10.0.0.1:7080"}, APIBind: "127.0.0.1:0"}, "Bootstrap"},
		{"API on every address without advertise", Options{ID: "d1", APIBind: "0.0.0.0:7080"}, "APIAdvertise"},
		{"API port in use", Options{ID: "d1", APIBind: taken.Addr().String(), RaftBind: "127.0.0.1:0", Witness: true}, ""},
		{"bad gossip address", Options{ID: "d1", APIBind: "127.0.0.1:0", GossipBind: "nowhere", Witness: true}, "GossipBind"},
		{"neither bootstrap, nor a token, nor certificates", Options{ID: "d1", APIBind: "127.0.0.1:0", RaftBind: "127.0.0.1:0", Witness: true,
			Security: Security{Insecure: false}}, "Security"},
		{"join without a token", Options{ID: "d2", APIBind: "127.0.0.1:0", RaftBind: "127.0.0.1:0", Witness: true, Join: []string{"127.0.0.1:1"},
			Security: Security{Insecure: false}}, "Security"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.DataDir, tt.opts.GossipKey = filepath.Join(t.TempDir(), "data"), key
			if tt.option != "Security" {
				tt.opts.Security.Insecure = true // these are about other options
			}
			d, err := New(tt.opts)
			if err == nil {
				d.shutdown()
				t.Fatal("New accepted it")
			}
			var oe *OptionError
			if tt.option != "" && (!errors.As(err, &oe) || oe.Option != tt.option) {
				t.Fatalf("err %v, want an OptionError for %s", err, tt.option)
			}
		})
	}
}
