package apiserver

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/fsm"
)

func post(t *testing.T, h http.Handler, path, contentType string, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest("POST", path, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// A chunk in the binary encoding is staged as its JSON form would be, with what an
// operator may not set (a real server's origin, its health) dropped alike.
func TestABinaryChunkIsStagedAsItsJSONWouldBe(t *testing.T) {
	claim := webRS1.RealServer
	claim.Origin, claim.Health, claim.HealthReason = fsm.AgentOrigin("rs1"), fsm.HealthDown, "said so"
	cmds := []api.BatchCommand{}
	for _, c := range []fsm.Command{webService, dnsService, fsm.AddRealServer{RealServer: claim}} {
		bc, err := api.BatchCommandFor(c)
		if err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, bc)
	}
	binaryBody, err := fsm.Encode(fsm.Batch{Commands: []fsm.Command{webService, dnsService, fsm.AddRealServer{RealServer: claim}}})
	if err != nil {
		t.Fatal(err)
	}
	jsonBody, err := json.Marshal(api.StageRequest{Commands: cmds})
	if err != nil {
		t.Fatal(err)
	}
	var states [][]fsm.RealServer
	for _, body := range []struct {
		contentType string
		data        []byte
	}{{"application/json", jsonBody}, {api.CommandsContentType, binaryBody}} {
		store, srv := newTestServer(t)
		if rec := post(t, srv, "/v1/staged/tx1/chunks/0", body.contentType, body.data); rec.Code != http.StatusNoContent {
			t.Fatalf("%s chunk: %d %s", body.contentType, rec.Code, rec.Body)
		}
		if rec := request(t, srv, "POST", "/v1/staged/tx1/commit", `{"chunks":1}`); rec.Code != http.StatusOK {
			t.Fatalf("%s commit: %d %s", body.contentType, rec.Code, rec.Body)
		}
		store.View(func(s *fsm.State) { states = append(states, s.AllRealServers()) })
	}
	if !reflect.DeepEqual(states[0], states[1]) {
		t.Fatalf("JSON staged %+v\nbinary staged %+v", states[0], states[1])
	}
	if rs := states[1][0]; rs.Origin != fsm.OriginOperator || rs.Health != fsm.HealthUnknown || rs.HealthReason != "" {
		t.Errorf("an operator's chunk set origin %q, health %q (%q)", rs.Origin, rs.Health, rs.HealthReason)
	}
}

func TestABadBinaryChunkIsRefusedNamingWhatIsWrong(t *testing.T) {
	verdict, err := fsm.Encode(fsm.Batch{Commands: []fsm.Command{webService, fsm.SetHealth{Key: webRS1.RealServer.Key(), Health: fsm.HealthDown}}})
	if err != nil {
		t.Fatal(err)
	}
	single, err := fsm.Encode(fsm.RemoveService{Name: "web"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		body  []byte
		field string
	}{
		{"garbage", []byte("not a batch"), "body"},
		{"cut short", verdict[:len(verdict)-3], "body"},
		{"one command, not a batch", single, "body"},
		{"a health verdict", verdict, "commands[1]"},
	} {
		store, srv := newTestServer(t)
		before := store.version()
		rec := post(t, srv, "/v1/staged/tx1/chunks/0", api.CommandsContentType, c.body)
		if rec.Code != http.StatusBadRequest || decode[api.ErrorBody](t, rec).Field != c.field {
			t.Errorf("%s: %d %s, want 400 naming %s", c.name, rec.Code, rec.Body, c.field)
		}
		if store.version() != before {
			t.Errorf("%s: the refused chunk changed the state", c.name)
		}
	}
	// Any other type is not guessed at.
	_, srv := newTestServer(t)
	if rec := post(t, srv, "/v1/staged/tx1/chunks/0", "text/plain", []byte("-A -t 192.0.2.1:80")); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "Content-Type") {
		t.Errorf("text/plain chunk: %d %s", rec.Code, rec.Body)
	}
}
