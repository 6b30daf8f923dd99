package fsm

import (
	"errors"
	"net/netip"
	"testing"
)

func TestHealthCheckTextForm(t *testing.T) {
	tests := []struct {
		text string
		want HealthCheck
	}{
		{"tcp", HealthCheck{Type: CheckTCP}},
		{"none", HealthCheck{Type: CheckNone}},
		{"tcp:8080,interval=500ms,timeout=250ms,rise=1,fall=2", HealthCheck{Type: CheckTCP, Port: 8080, IntervalMS: 500, TimeoutMS: 250, Rise: 1, Fall: 2}},
		{"http:/healthz,status=200-299|301,host=www.example.org,regex=ok,start=down",
			HealthCheck{Type: CheckHTTP, Path: "/healthz", Status: []string{"200-299", "301"}, Host: "www.example.org", BodyRegex: "ok", StartDown: true}},
		{"https:/,sni=www,tls_verify=true,source=192.0.2.1", HealthCheck{Type: CheckHTTPS, Path: "/", SNI: "www", TLSVerify: true, Source: netip.MustParseAddr("192.0.2.1")}},
		{"udp:53,payload=00ff,expect=^ok", HealthCheck{Type: CheckUDP, Port: 53, PayloadHex: "00ff", Expect: "^ok"}},
		{"dns,query=example.org,qtype=AAAA,rcode=NOERROR", HealthCheck{Type: CheckDNS, Query: "example.org", QueryType: "AAAA", RCode: "NOERROR"}},
		{"smtp,helo=lb1", HealthCheck{Type: CheckSMTP, HELO: "lb1"}},
		{"exec:/usr/bin/pidof haproxy", HealthCheck{Type: CheckExec, Command: []string{"/usr/bin/pidof", "haproxy"}}},
		{"exec,timeout=3s,dynamic_weight=true,command=/usr/local/bin/check a,b", HealthCheck{Type: CheckExec, TimeoutMS: 3000, DynamicWeight: true, Command: []string{"/usr/local/bin/check", "a,b"}}},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			got, err := ParseHealthCheck(tt.text)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(&tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			// The text it prints reads back as the same spec.
			again, err := ParseHealthCheck(got.String())
			if err != nil || !again.Equal(got) {
				t.Fatalf("%q read back as %+v, %v", got.String(), again, err)
			}
		})
	}
}

func TestHealthCheckTextErrorsNameTheKey(t *testing.T) {
	for text, field := range map[string]string{
		"ping":               "check",
		"tcp,interval=fast":  "check.interval",
		"tcp:http":           "check.port",
		"http,colour=blue":   "check",
		"tcp,rise":           "check",
		"http,start=maybe":   "check.start",
		"tcp,source=nowhere": "check.source",
		"exec:":              "check.command",
		"tls,port=1":         "check",
	} {
		_, err := ParseHealthCheck(text)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != field || !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: %v, want an invalid %s", text, err, field)
		}
	}
}
