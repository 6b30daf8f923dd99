package apiserver

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/raftlvs/raftlvs/fsm"
)

// fuzzServer answers one request on a fresh leader holding the web service and one real
// server. It fails the test on a 5xx, and on an accepted write whose result does not
// survive the fsm's own checks.
func fuzzServer(t *testing.T, method, path string, body []byte) {
	store := newFakeStore("d1", true)
	store.must(webService, webRS1)
	before := store.version()
	req := httptest.NewRequest(method, path, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	New(store, nil).ServeHTTP(rec, req)

	switch {
	case rec.Code >= 500:
		t.Fatalf("%s %s %q: %d %s", method, path, body, rec.Code, rec.Body)
	case rec.Code >= 400:
		if store.version() != before {
			t.Fatalf("rejected request changed the state: %q", body)
		}
		return
	}
	// Accepted: every service and real server in the state passes validation, and the
	// state survives a snapshot round trip.
	store.View(func(st *fsm.State) {
		for _, svc := range st.Services() {
			if err := fsm.ValidateService(&svc); err != nil {
				t.Fatalf("accepted %q left invalid service %+v: %v", body, svc, err)
			}
			for _, rs := range st.RealServers(svc.Name) {
				if err := fsm.ValidateRealServer(&rs, &svc); err != nil {
					t.Fatalf("accepted %q left invalid real server %+v: %v", body, rs, err)
				}
			}
		}
		var buf strings.Builder
		if err := st.WriteSnapshot(&buf); err != nil {
			t.Fatalf("snapshot after %q: %v", body, err)
		}
	})
}

func FuzzServiceRequest(f *testing.F) {
	for _, seed := range []string{
		`{"protocol":"tcp","vip":"192.0.2.11","port":80}`,
		`{"name":"s","protocol":"udp","vip":"2001:db8::1","port":53,"one_packet":true,"scheduler":"sh","sched_flags":["sh-port"]}`,
		`{"fwmark":7,"family":"ipv6","persistence":60,"persist_mask":64,"persist_engine":"sip"}`,
		`{"protocol":"sctp","vip":"192.0.2.11","port":0,"persistence":360,"health_check":{"type":"http","path":"/"}}`,
		`{"protocol":"tcp","vip":"::ffff:192.0.2.1","port":1,"quorum":2,"hysteresis":1,"sorry_server":"192.0.2.9:80"}`,
		`{"vip":null}`, `[]`, `"x"`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzServer(t, http.MethodPost, "/v1/services", body)
		fuzzServer(t, http.MethodPut, "/v1/services/web", body)
	})
}

func FuzzRealServerRequest(f *testing.F) {
	for _, seed := range []string{
		`{"addr":"198.51.100.22"}`,
		`{"addr":"198.51.100.22","port":8080,"weight":0,"forwarding":"nat","upper_threshold":10,"lower_threshold":5}`,
		`{"addr":"198.51.100.22","forwarding":"dr","port":81}`,
		`{"addr":"198.51.100.21","admin":"draining","weight":65536}`,
		`{"addr":"::ffff:198.51.100.23","weight":null}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzServer(t, http.MethodPost, "/v1/services/web/servers", body)
		fuzzServer(t, http.MethodPut, "/v1/services/web/servers/198.51.100.21/80", body)
	})
}

func FuzzBatchRequest(f *testing.F) {
	for _, seed := range []string{
		`{"commands":[{"op":"remove_service","name":"web"},{"op":"add_service","service":{"name":"web","protocol":"tcp","vip":"192.0.2.10","port":80}}]}`,
		`{"commands":[{"op":"add_real_server","real_server":{"service":"web","addr":"198.51.100.9","weight":0}},{"op":"edit_real_server","real_server":{"service":"web","addr":"198.51.100.9"}}]}`,
		`{"commands":[{"op":"remove_real_server","key":{"service":"web","addr":"198.51.100.21","port":80}}]}`,
		`{"commands":[{"op":"edit_service","service":{"name":"web","protocol":"tcp","vip":"192.0.2.10","port":80,"forwarding":"dr"}}]}`,
		`{"commands":[{"op":"x","name":"y","key":null}]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzServer(t, http.MethodPost, "/v1/batch", body)
	})
}
