package realserver

import (
	"errors"
	"testing"
)

func TestParseServiceSpec(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    ServiceSpec
		wantErr bool
	}{
		{name: "name only gets the default weight", in: "web", want: ServiceSpec{Name: "web", Weight: 1}},
		{name: "port", in: "web:8080", want: ServiceSpec{Name: "web", Port: 8080, Weight: 1}},
		{name: "weight", in: "web@10", want: ServiceSpec{Name: "web", Weight: 10}},
		{name: "port and weight", in: "web:8080@0", want: ServiceSpec{Name: "web", Port: 8080, Weight: 0}},
		{name: "maximum weight", in: "web@65535", want: ServiceSpec{Name: "web", Weight: 65535}},
		{name: "IPv6 default name keeps its colons", in: "tcp-2001:db8::1-80", want: ServiceSpec{Name: "tcp-2001:db8::1-80", Weight: 1}},
		{name: "IPv6 default name with a port", in: "tcp-2001:db8::1-80:8080@5", want: ServiceSpec{Name: "tcp-2001:db8::1-80", Port: 8080, Weight: 5}},
		{name: "weight above the kernel's", in: "web@65536", wantErr: true},
		{name: "negative weight", in: "web@-1", wantErr: true},
		{name: "weight not a number", in: "web@ten", wantErr: true},
		{name: "empty weight", in: "web@", wantErr: true},
		{name: "port zero", in: "web:0", wantErr: true},
		{name: "port too large", in: "web:65536", wantErr: true},
		{name: "empty name", in: ":80", wantErr: true},
		{name: "empty", in: "", wantErr: true},
		{name: "name with a space", in: "my web", wantErr: true},
		{name: "name starting with a dash", in: "-web", wantErr: true},
		{name: "two weights", in: "web@1@2", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseServiceSpec(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrBadSpec) {
					t.Fatalf("ParseServiceSpec(%q) = %+v, %v; want an ErrBadSpec", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseServiceSpec(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseServiceSpecsRejectsAServiceNamedTwice(t *testing.T) {
	if _, err := ParseServiceSpecs([]string{"web:80", "web:8080"}); !errors.Is(err, ErrBadSpec) {
		t.Fatalf("want ErrBadSpec, got %v", err)
	}
	got, err := ParseServiceSpecs([]string{"web", "api:9000@3"})
	if err != nil || len(got) != 2 || got[1] != (ServiceSpec{Name: "api", Port: 9000, Weight: 3}) {
		t.Fatalf("got %+v, %v", got, err)
	}
}
