package apiserver

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/fsm"
)

func request(t *testing.T, h http.Handler, method, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func decode[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %T from %q: %v", v, rec.Body.String(), err)
	}
	return v
}

var (
	webService = fsm.AddService{Service: fsm.Service{Name: "web", Protocol: fsm.TCP, VIP: netip.MustParseAddr("192.0.2.10"), Port: 80}}
	dnsService = fsm.AddService{Service: fsm.Service{Name: "dns", Protocol: fsm.UDP, VIP: netip.MustParseAddr("192.0.2.10"), Port: 53}}
	webRS1     = fsm.AddRealServer{RealServer: fsm.RealServer{Service: "web", Addr: netip.MustParseAddr("198.51.100.21"), Weight: 10}}
)

func newTestServer(t *testing.T) (*fakeStore, *Server) {
	t.Helper()
	store := newFakeStore("d1", true)
	return store, New(store, nil)
}

func TestServiceLifecycle(t *testing.T) {
	store, srv := newTestServer(t)

	rec := request(t, srv, "POST", "/v1/services", `{"protocol":"tcp","vip":"192.0.2.10","port":80,"persistence":300}`)
	if rec.Code != http.StatusCreated {
		t.Fatalf("add: %d %s", rec.Code, rec.Body)
	}
	got := decode[api.ServiceInfo](t, rec)
	if got.Name != "tcp-192.0.2.10-80" || got.Scheduler != fsm.DefaultScheduler || got.Forwarding != fsm.NAT || got.PersistMask != 32 {
		t.Errorf("add answered %+v, want the derived name and defaults filled in", got.Service)
	}
	if got.RealServers == nil {
		t.Error("real_servers is null, want []")
	}

	rec = request(t, srv, "PUT", "/v1/services/tcp-192.0.2.10-80", `{"protocol":"tcp","vip":"192.0.2.10","port":80,"scheduler":"rr"}`)
	if rec.Code != http.StatusOK {
		t.Fatalf("edit: %d %s", rec.Code, rec.Body)
	}
	if got := decode[api.ServiceInfo](t, rec); got.Scheduler != "rr" || got.Persistence != 0 {
		t.Errorf("edit answered scheduler %q persistence %d; want rr and persistence reset to its default by the full replacement", got.Scheduler, got.Persistence)
	}

	rec = request(t, srv, "GET", "/v1/services", "")
	if list := decode[api.ServiceList](t, rec); len(list.Services) != 1 || list.Services[0].Scheduler != "rr" {
		t.Errorf("list = %+v", list)
	}
	if rec := request(t, srv, "GET", "/v1/services/tcp-192.0.2.10-80", ""); rec.Code != http.StatusOK {
		t.Errorf("get: %d", rec.Code)
	}
	if rec := request(t, srv, "DELETE", "/v1/services/tcp-192.0.2.10-80", ""); rec.Code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", rec.Code, rec.Body)
	}
	if rec := request(t, srv, "GET", "/v1/services/tcp-192.0.2.10-80", ""); rec.Code != http.StatusNotFound {
		t.Errorf("get after delete: %d, want 404", rec.Code)
	}
	if store.applied != 3 {
		t.Errorf("%d commands committed, want 3", store.applied)
	}
}

func TestRealServerEndpoints(t *testing.T) {
	store, srv := newTestServer(t)
	store.must(webService, fsm.AddService{Service: fsm.Service{Name: "web6", Protocol: fsm.TCP, VIP: netip.MustParseAddr("2001:db8::10"), Port: 443}})

	tests := []struct {
		name, method, path, body string
		wantCode                 int
		want                     func(rs fsm.RealServer) bool
	}{
		{"missing weight means 1 and missing port the service's", "POST", "/v1/services/web/servers", `{"addr":"198.51.100.21"}`, 201,
			func(rs fsm.RealServer) bool {
				return rs.Weight == 1 && rs.Port == 80 && rs.Admin == fsm.Active && rs.Origin == fsm.OriginOperator
			}},
		{"explicit weight 0 is kept", "POST", "/v1/services/web/servers", `{"addr":"198.51.100.22","weight":0}`, 201,
			func(rs fsm.RealServer) bool { return rs.Weight == 0 }},
		{"put replaces: drain and weight 5", "PUT", "/v1/services/web/servers/198.51.100.21/80", `{"weight":5,"admin":"draining"}`, 200,
			func(rs fsm.RealServer) bool { return rs.Weight == 5 && rs.Admin == fsm.Draining }},
		{"put without weight resets it to 1", "PUT", "/v1/services/web/servers/198.51.100.21/80", `{}`, 200,
			func(rs fsm.RealServer) bool { return rs.Weight == 1 && rs.Admin == fsm.Active }},
		{"ipv6 real server", "POST", "/v1/services/web6/servers", `{"addr":"2001:db8::21","port":443,"weight":3}`, 201,
			func(rs fsm.RealServer) bool { return rs.Addr == netip.MustParseAddr("2001:db8::21") && rs.Weight == 3 }},
		{"ipv6 address in a path segment", "PUT", "/v1/services/web6/servers/2001:db8::21/443", `{"weight":4}`, 200,
			func(rs fsm.RealServer) bool { return rs.Weight == 4 }},
		{"bracketed ipv6 in a path segment", "PUT", "/v1/services/web6/servers/[2001:db8::21]/443", `{"weight":6}`, 200,
			func(rs fsm.RealServer) bool { return rs.Weight == 6 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := request(t, srv, tt.method, tt.path, tt.body)
			if rec.Code != tt.wantCode {
				t.Fatalf("%s %s: %d %s, want %d", tt.method, tt.path, rec.Code, rec.Body, tt.wantCode)
			}
			if rs := decode[fsm.RealServer](t, rec); !tt.want(rs) {
				t.Errorf("answered %+v", rs)
			}
		})
	}

	t.Run("delete", func(t *testing.T) {
		if rec := request(t, srv, "DELETE", "/v1/services/web6/servers/2001:db8::21/443", ""); rec.Code != http.StatusNoContent {
			t.Fatalf("delete: %d %s", rec.Code, rec.Body)
		}
		store.View(func(st *fsm.State) {
			if n := len(st.RealServers("web6")); n != 0 {
				t.Errorf("%d real servers left in web6", n)
			}
		})
	})
}

func TestEditRealServerKeepsHealthVerdict(t *testing.T) {
	store, srv := newTestServer(t)
	store.must(webService, webRS1)
	key := fsm.RSKey{Service: "web", Addr: netip.MustParseAddr("198.51.100.21"), Port: 80}
	store.must(fsm.SetHealth{Key: key, Health: fsm.HealthDown})

	rec := request(t, srv, "PUT", "/v1/services/web/servers/198.51.100.21/80", `{"weight":7}`)
	if rec.Code != http.StatusOK {
		t.Fatalf("edit: %d %s", rec.Code, rec.Body)
	}
	if rs := decode[fsm.RealServer](t, rec); rs.Health != fsm.HealthDown || rs.Weight != 7 {
		t.Errorf("after an operator edit health = %q weight %d; a down server must stay down", rs.Health, rs.Weight)
	}
}

// TestBadRequestsChangeNothing pins the status, error code and field of each error class,
// and that a rejected request leaves the state as it was.
func TestBadRequestsChangeNothing(t *testing.T) {
	tests := []struct {
		name, method, path, body string
		contentType              string // "" means application/json when there is a body
		wantCode                 int
		wantErrCode, wantField   string
	}{
		{"malformed json", "POST", "/v1/services", `{"protocol":`, "", 400, api.CodeInvalid, "body"},
		{"unknown field", "POST", "/v1/services", `{"protocol":"tcp","vip":"192.0.2.11","port":80,"colour":"red"}`, "", 400, api.CodeInvalid, "body"},
		{"trailing data", "POST", "/v1/services", `{"protocol":"tcp","vip":"192.0.2.11","port":80} {}`, "", 400, api.CodeInvalid, "body"},
		{"wrong content type", "POST", "/v1/services", `{"protocol":"tcp","vip":"192.0.2.11","port":80}`, "application/x-www-form-urlencoded", 400, api.CodeInvalid, "body"},
		{"empty body", "POST", "/v1/services", ``, "application/json", 400, api.CodeInvalid, "body"},
		{"oversized body", "POST", "/v1/services", `{"name":"` + strings.Repeat("a", api.MaxBodyBytes) + `"}`, "", 413, api.CodeTooLarge, "body"},
		{"port out of range", "POST", "/v1/services", `{"protocol":"tcp","vip":"192.0.2.11","port":70000}`, "", 400, api.CodeInvalid, "port"},
		{"bad address", "POST", "/v1/services", `{"protocol":"tcp","vip":"192.0.2.300","port":80}`, "", 400, api.CodeInvalid, "body"},
		{"unknown scheduler", "POST", "/v1/services", `{"protocol":"tcp","vip":"192.0.2.11","port":80,"scheduler":"fastest"}`, "", 400, api.CodeInvalid, "scheduler"},
		{"ops on tcp", "POST", "/v1/services", `{"protocol":"tcp","vip":"192.0.2.11","port":80,"one_packet":true}`, "", 400, api.CodeInvalid, "one_packet"},
		{"duplicate name", "POST", "/v1/services", `{"name":"web","protocol":"tcp","vip":"192.0.2.11","port":80}`, "", 409, api.CodeExists, "name"},
		{"same packets as another service", "POST", "/v1/services", `{"name":"web2","protocol":"tcp","vip":"192.0.2.10","port":80}`, "", 409, api.CodeConflict, "vip"},
		{"rename through put", "PUT", "/v1/services/web", `{"name":"other","protocol":"tcp","vip":"192.0.2.10","port":80}`, "", 400, api.CodeInvalid, "name"},
		{"edit a missing service", "PUT", "/v1/services/nope", `{"protocol":"tcp","vip":"192.0.2.99","port":80}`, "", 404, api.CodeNotFound, "name"},
		{"remove a missing service", "DELETE", "/v1/services/nope", ``, "", 404, api.CodeNotFound, "name"},
		{"get a missing service", "GET", "/v1/services/nope", ``, "", 404, api.CodeNotFound, "name"},
		{"real server of a missing service", "POST", "/v1/services/nope/servers", `{"addr":"198.51.100.30"}`, "", 404, api.CodeNotFound, "service"},
		{"negative weight", "POST", "/v1/services/web/servers", `{"addr":"198.51.100.30","weight":-1}`, "", 400, api.CodeInvalid, "weight"},
		{"duplicate real server", "POST", "/v1/services/web/servers", `{"addr":"198.51.100.21"}`, "", 409, api.CodeExists, "addr"},
		{"real server of another family", "POST", "/v1/services/web/servers", `{"addr":"2001:db8::1"}`, "", 400, api.CodeInvalid, "addr"},
		{"service in body disagrees with path", "POST", "/v1/services/web/servers", `{"service":"dns","addr":"198.51.100.30"}`, "", 400, api.CodeInvalid, "service"},
		{"not an address in the path", "PUT", "/v1/services/web/servers/host.example/80", `{}`, "", 400, api.CodeInvalid, "addr"},
		{"not a port in the path", "DELETE", "/v1/services/web/servers/198.51.100.21/http", ``, "", 400, api.CodeInvalid, "port"},
		{"address in body disagrees with path", "PUT", "/v1/services/web/servers/198.51.100.21/80", `{"addr":"198.51.100.22"}`, "", 400, api.CodeInvalid, "addr"},
		{"edit a missing real server", "PUT", "/v1/services/web/servers/198.51.100.99/80", `{}`, "", 404, api.CodeNotFound, "addr"},
		{"empty batch", "POST", "/v1/batch", `{"commands":[]}`, "", 400, api.CodeInvalid, "commands"},
		{"unknown batch op", "POST", "/v1/batch", `{"commands":[{"op":"flush"}]}`, "", 400, api.CodeInvalid, "commands[0].op"},
		{"batch payload missing", "POST", "/v1/batch", `{"commands":[{"op":"add_service"}]}`, "", 400, api.CodeInvalid, "commands[0].service"},
		{"batch payload of another op", "POST", "/v1/batch", `{"commands":[{"op":"remove_service","name":"web","service":{}}]}`, "", 400, api.CodeInvalid, "commands[0].service"},
		{"batch real server without service", "POST", "/v1/batch", `{"commands":[{"op":"add_real_server","real_server":{"addr":"198.51.100.30"}}]}`, "", 400, api.CodeInvalid, "commands[0].real_server.service"},
		{"batch whose later command fails applies nothing", "POST", "/v1/batch",
			`{"commands":[{"op":"add_service","service":{"name":"new","protocol":"tcp","vip":"192.0.2.50","port":80}},{"op":"add_real_server","real_server":{"service":"new","addr":"198.51.100.1","weight":-5}}]}`,
			"", 400, api.CodeInvalid, "weight"},
		{"join with a bad address", "POST", "/v1/join", `{"id":"d2","raft_addr":"nowhere","api_addr":"127.0.0.1:7080"}`, "", 400, api.CodeInvalid, "raft_addr"},
		{"leave without id", "POST", "/v1/leave", `{}`, "", 400, api.CodeInvalid, "id"},
		{"leave of an unknown director", "POST", "/v1/leave", `{"id":"d9"}`, "", 404, api.CodeNotFound, "id"},
		{"no such endpoint", "GET", "/v2/everything", ``, "", 404, api.CodeNotFound, "path"},
		{"a known path with another method", "PATCH", "/v1/services/web", `{}`, "", 405, api.CodeMethod, "method"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, srv := newTestServer(t)
			store.must(webService, dnsService, webRS1)
			before := store.version()

			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			switch {
			case tt.contentType != "":
				req.Header.Set("Content-Type", tt.contentType)
			case tt.body != "":
				req.Header.Set("Content-Type", "application/json")
			}
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)

			if rec.Code != tt.wantCode {
				t.Fatalf("status %d (%s), want %d", rec.Code, rec.Body, tt.wantCode)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			eb := decode[api.ErrorBody](t, rec)
			if eb.Code != tt.wantErrCode || eb.Field != tt.wantField || eb.Error == "" {
				t.Errorf("error %+v, want code %q field %q and a message", eb, tt.wantErrCode, tt.wantField)
			}
			if tt.wantField != "body" && tt.wantField != "path" && !strings.Contains(eb.Error, tt.wantField) {
				t.Errorf("message %q does not name the field %q", eb.Error, tt.wantField)
			}
			if after := store.version(); after != before {
				t.Errorf("state version went from %d to %d on a rejected request", before, after)
			}
		})
	}
}

func TestBatchIsOneAtomicCommand(t *testing.T) {
	store, srv := newTestServer(t)
	store.must(webService, webRS1)
	body := `{"commands":[
		{"op":"remove_service","name":"web"},
		{"op":"add_service","service":{"name":"web","protocol":"tcp","vip":"192.0.2.10","port":80,"scheduler":"rr"}},
		{"op":"add_real_server","real_server":{"service":"web","addr":"198.51.100.31","weight":0}},
		{"op":"add_real_server","real_server":{"service":"web","addr":"198.51.100.32"}},
		{"op":"edit_real_server","real_server":{"service":"web","addr":"198.51.100.32","weight":9}},
		{"op":"remove_real_server","key":{"service":"web","addr":"198.51.100.31","port":80}}
	]}`
	rec := request(t, srv, "POST", "/v1/batch", body)
	if rec.Code != http.StatusOK {
		t.Fatalf("batch: %d %s", rec.Code, rec.Body)
	}
	if res := decode[api.BatchResult](t, rec); res.Applied != 6 {
		t.Errorf("applied %d, want 6", res.Applied)
	}
	if store.applied != 1 {
		t.Errorf("%d log entries, want the batch as one", store.applied)
	}
	store.View(func(st *fsm.State) {
		rss := st.RealServers("web")
		if len(rss) != 1 || rss[0].Addr != netip.MustParseAddr("198.51.100.32") || rss[0].Weight != 9 {
			t.Errorf("real servers after the batch: %+v", rss)
		}
		if svc, _ := st.Service("web"); svc.Scheduler != "rr" {
			t.Errorf("scheduler %q, want rr", svc.Scheduler)
		}
	})
}

func TestStatusAndState(t *testing.T) {
	store, srv := newTestServer(t)
	store.must(fsm.SetClusterID{ID: "lab"}, webService, webRS1,
		fsm.RegisterDirector{Director: fsm.Director{ID: "d1", RaftAddr: "127.0.0.1:7000", APIAddr: "127.0.0.1:7080"}})

	t.Run("without hooks the optional sections are absent", func(t *testing.T) {
		rec := request(t, srv, "GET", "/v1/status", "")
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"dataplane", "agents"} {
			if _, ok := raw[k]; ok {
				t.Errorf("%q present without its hook", k)
			}
		}
		st := decode[api.StatusResponse](t, rec)
		if st.Node.NodeID != "d1" || st.ClusterID != "lab" || len(st.Services) != 1 || len(st.Services[0].RealServers) != 1 || len(st.Directors) != 1 {
			t.Errorf("status %+v", st)
		}
	})

	t.Run("hooks fill dataplane and agents", func(t *testing.T) {
		srv.DataPlane = func(counters bool) *api.DataPlane {
			dp := &api.DataPlane{VIPs: []api.VIP{{Addr: netip.MustParseAddr("192.0.2.10"), Interface: "eth0"}}}
			if counters {
				dp.Services = []api.ServiceCounters{{Service: "web"}}
			}
			return dp
		}
		srv.Agents = func() []api.Agent { return []api.Agent{{ID: "rs1", State: "alive"}} }
		defer func() { srv.DataPlane, srv.Agents = nil, nil }()
		st := decode[api.StatusResponse](t, request(t, srv, "GET", "/v1/status", ""))
		if st.DataPlane == nil || len(st.DataPlane.VIPs) != 1 || st.DataPlane.VIPs[0].Interface != "eth0" || st.DataPlane.Services != nil {
			t.Errorf("dataplane %+v, want the api.VIP and no counters", st.DataPlane)
		}
		if len(st.Agents) != 1 || st.Agents[0].ID != "rs1" {
			t.Errorf("agents %+v", st.Agents)
		}
		st = decode[api.StatusResponse](t, request(t, srv, "GET", "/v1/status?counters=true", ""))
		if st.DataPlane == nil || len(st.DataPlane.Services) != 1 {
			t.Errorf("dataplane with counters %+v", st.DataPlane)
		}
		if rec := request(t, srv, "GET", "/v1/status?counters=maybe", ""); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "counters") {
			t.Errorf("?counters=maybe: %d %s, want 400 naming the parameter", rec.Code, rec.Body)
		}
	})

	t.Run("state dump", func(t *testing.T) {
		d := decode[api.StateDump](t, request(t, srv, "GET", "/v1/state", ""))
		if d.ClusterID != "lab" || d.Version != store.version() || len(d.Services) != 1 || len(d.RealServers) != 1 || len(d.Directors) != 1 {
			t.Errorf("state %+v", d)
		}
	})
}
