package realserver

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/fsm"
)

// directorAPI serves GET /v1/services/{name} from a fixed table.
func directorAPI(t *testing.T, table map[string]api.ServiceInfo) (addr string, hits *atomic.Int32) {
	t.Helper()
	hits = new(atomic.Int32)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/services/{name}", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		resp, ok := table[r.PathValue("name")]
		if !ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error":"no service","code":"not_found"}`))
			return
		}
		json.NewEncoder(w).Encode(resp)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), hits
}

// deadAddr is a loopback address where nothing listens.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

var webService = fsm.Service{Name: "web", Protocol: fsm.TCP, VIP: netip.MustParseAddr("192.0.2.100"), Port: 80, Family: fsm.IPv4, Scheduler: "wlc", Forwarding: fsm.DR}

func TestAPISourceTriesTheNextDirector(t *testing.T) {
	good, hits := directorAPI(t, map[string]api.ServiceInfo{"web": {Service: webService}})
	src := APISource{Client: api.NewClient(deadAddr(t), good)}
	got, err := src.Service(context.Background(), "web")
	if err != nil {
		t.Fatal(err)
	}
	if got.VIP != webService.VIP || got.Forwarding != fsm.DR || hits.Load() != 1 {
		t.Fatalf("got %+v after %d hits", got, hits.Load())
	}
}

func TestAPISourceErrors(t *testing.T) {
	good, _ := directorAPI(t, map[string]api.ServiceInfo{"web": {Service: webService}, "liar": {Service: webService}})
	tests := []struct {
		name      string
		directors []string
		service   string
		want      error
	}{
		{name: "unknown service is not found", directors: []string{good}, service: "api", want: fsm.ErrNotFound},
		{name: "no director answers", directors: []string{deadAddr(t), deadAddr(t)}, service: "web", want: ErrNoDirector},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := APISource{Client: api.NewClient(tt.directors...)}
			if _, err := src.Service(context.Background(), tt.service); !errors.Is(err, tt.want) {
				t.Fatalf("want %v, got %v", tt.want, err)
			}
		})
	}
	t.Run("answer for another service is rejected", func(t *testing.T) {
		src := APISource{Client: api.NewClient(good)}
		if _, err := src.Service(context.Background(), "liar"); err == nil {
			t.Fatal("accepted an answer for service web when asking for liar")
		}
	})
}

func TestAPISourceDrained(t *testing.T) {
	addr := netip.MustParseAddr("192.0.2.10")
	rs := func(admin fsm.AdminState, origin string) fsm.RealServer {
		return fsm.RealServer{Service: "web", Addr: addr, Port: 80, Weight: 1, Origin: origin, Admin: admin, Health: fsm.HealthUp}
	}
	tests := []struct {
		name    string
		servers []fsm.RealServer
		service string
		want    bool
	}{
		{name: "active", servers: []fsm.RealServer{rs(fsm.Active, "agent:rs1")}, service: "web", want: false},
		{name: "draining: connections may still be open", servers: []fsm.RealServer{rs(fsm.Draining, "agent:rs1")}, service: "web", want: false},
		{name: "removed", service: "web", want: true},
		{name: "an operator's real server at the same address is not ours", servers: []fsm.RealServer{rs(fsm.Active, fsm.OriginOperator)}, service: "web", want: true},
		{name: "service gone", service: "gone", want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dirAddr, _ := directorAPI(t, map[string]api.ServiceInfo{"web": {Service: webService, RealServers: tt.servers}})
			src := APISource{Client: api.NewClient(dirAddr)}
			got, err := src.Drained(context.Background(), tt.service, "rs1", addr)
			if err != nil || got != tt.want {
				t.Fatalf("Drained = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}
