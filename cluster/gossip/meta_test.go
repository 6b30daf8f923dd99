package gossip

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func agentMeta(id string, services ...ServicePort) Meta {
	return Meta{Role: RoleAgent, ID: id, Addr: netip.MustParseAddr("192.0.2.10"), Services: services}
}

func TestMetaRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		meta Meta
	}{
		{"director", Meta{Role: RoleDirector, ID: "d1", APIAddr: "10.0.0.1:8080"}},
		{"director with ipv6 api", Meta{Role: RoleDirector, ID: "d1", APIAddr: "[2001:db8::1]:8080"}},
		{"director whose tracked checks fail", Meta{Role: RoleDirector, ID: "d1", APIAddr: "10.0.0.1:8080", Ineligible: true}},
		{"agent without services", agentMeta("a1")},
		{"agent with services", agentMeta("a1", ServicePort{Service: "web", Port: 80, Weight: 100}, ServicePort{Service: "web", Port: 8080, Weight: 0}, ServicePort{Service: "dns", Port: 0, Weight: 65535})},
		{"agent with its own verdicts", agentMeta("a1", ServicePort{Service: "web", Port: 80, Weight: 1, Health: HealthDown, Reason: "HTTP 503"},
			ServicePort{Service: "dns", Weight: 1, Health: HealthUp})},
		{"draining ipv6 agent", Meta{Role: RoleAgent, ID: "a1", Addr: netip.MustParseAddr("2001:db8::10"), Services: []ServicePort{{Service: "web", Port: 80, Weight: 1}}, Draining: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.meta.Encode()
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			got, err := DecodeMeta(b)
			if err != nil {
				t.Fatalf("DecodeMeta: %v", err)
			}
			if !reflect.DeepEqual(got, tt.meta) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, tt.meta)
			}
		})
	}
}

func TestMetaLeavingFlagRoundTrips(t *testing.T) {
	b, err := agentMeta("a1").encode(true)
	if err != nil {
		t.Fatal(err)
	}
	if _, leaving, err := decodeMeta(b); err != nil || !leaving {
		t.Fatalf("decodeMeta: leaving=%v err=%v, want true, nil", leaving, err)
	}
}

func TestMetaEncodeRefusesInvalid(t *testing.T) {
	manyServices := make([]ServicePort, 60)
	for i := range manyServices {
		manyServices[i] = ServicePort{Service: fmt.Sprintf("service-with-a-long-name-%02d", i), Port: 80, Weight: 1}
	}
	tests := []struct {
		name string
		meta Meta
		want error
	}{
		{"no role", Meta{ID: "x"}, ErrBadMeta},
		{"no id", Meta{Role: RoleDirector, APIAddr: "a:1"}, ErrBadMeta},
		{"id too long", Meta{Role: RoleDirector, ID: strings.Repeat("d", MaxIDLen+1), APIAddr: "a:1"}, ErrBadMeta},
		{"id with a space", Meta{Role: RoleDirector, ID: "d 1", APIAddr: "a:1"}, ErrBadMeta},
		{"director api address without port", Meta{Role: RoleDirector, ID: "d1", APIAddr: "10.0.0.1"}, ErrBadMeta},
		{"director with services", Meta{Role: RoleDirector, ID: "d1", APIAddr: "a:1", Services: []ServicePort{{Service: "web", Port: 80, Weight: 1}}}, ErrBadMeta},
		{"agent without address", Meta{Role: RoleAgent, ID: "a1"}, ErrBadMeta},
		{"agent with unspecified address", Meta{Role: RoleAgent, ID: "a1", Addr: netip.IPv4Unspecified()}, ErrBadMeta},
		{"agent with api address", Meta{Role: RoleAgent, ID: "a1", Addr: netip.MustParseAddr("192.0.2.1"), APIAddr: "a:1"}, ErrBadMeta},
		{"agent announcing eligibility", Meta{Role: RoleAgent, ID: "a1", Addr: netip.MustParseAddr("192.0.2.1"), Ineligible: true}, ErrBadMeta},
		{"negative weight", agentMeta("a1", ServicePort{Service: "web", Port: 80, Weight: -1}), ErrBadMeta},
		{"unknown health", agentMeta("a1", ServicePort{Service: "web", Weight: 1, Health: 7}), ErrBadMeta},
		{"reason too long", agentMeta("a1", ServicePort{Service: "web", Weight: 1, Health: HealthDown, Reason: strings.Repeat("x", MaxReasonLen+1)}), ErrBadMeta},
		{"weight above 65535", agentMeta("a1", ServicePort{Service: "web", Port: 80, Weight: 65536}), ErrBadMeta},
		{"service listed twice", agentMeta("a1", ServicePort{Service: "web", Port: 80, Weight: 1}, ServicePort{Service: "web", Port: 80, Weight: 2}), ErrBadMeta},
		{"bad service name", agentMeta("a1", ServicePort{Service: "-web", Port: 80, Weight: 1}), ErrBadMeta},
		{"above memberlist's 512 bytes", agentMeta("a1", manyServices...), ErrMetaTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.meta.Encode()
			if !errors.Is(err, tt.want) {
				t.Fatalf("Encode = %d bytes, %v; want %v", len(b), err, tt.want)
			}
		})
	}
}

func TestDecodeMetaRefusesGarbage(t *testing.T) {
	valid, err := agentMeta("a1", ServicePort{Service: "web", Port: 80, Weight: 1}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrBadMeta},
		{"other version", append([]byte{2}, valid[1:]...), ErrMetaVersion},
		{"truncated", valid[:len(valid)-1], ErrBadMeta},
		{"trailing byte", append(append([]byte{}, valid...), 0), ErrBadMeta},
		{"unknown flag", append([]byte{valid[0], valid[1], 0x80}, valid[3:]...), ErrBadMeta},
		{"unknown role", append([]byte{valid[0], 9}, valid[2:]...), ErrBadMeta},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeMeta(tt.b); !errors.Is(err, tt.want) {
				t.Fatalf("DecodeMeta = %v, want %v", err, tt.want)
			}
		})
	}
}

// FuzzDecodeMeta proves that any bytes a peer sends decode to a valid Meta or an error,
// never a panic, and that whatever decodes encodes back to the same bytes.
func FuzzDecodeMeta(f *testing.F) {
	for _, m := range []Meta{
		{Role: RoleDirector, ID: "d1", APIAddr: "10.0.0.1:8080"},
		agentMeta("a1", ServicePort{Service: "web", Port: 80, Weight: 100}, ServicePort{Service: "dns", Port: 53, Weight: 0}),
	} {
		b, err := m.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{1, 2, 0, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, leaving, err := decodeMeta(b)
		if err != nil {
			if !errors.Is(err, ErrBadMeta) && !errors.Is(err, ErrMetaVersion) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		again, err := m.encode(leaving)
		if err != nil {
			t.Fatalf("decoded meta %+v does not encode: %v", m, err)
		}
		if string(again) != string(b) {
			t.Fatalf("re-encoding changed the bytes:\n in %x\nout %x", b, again)
		}
	})
}

func BenchmarkMetaEncode(b *testing.B) {
	m := agentMeta("agent-0001", ServicePort{Service: "web", Port: 80, Weight: 100}, ServicePort{Service: "api", Port: 8443, Weight: 50})
	for b.Loop() {
		if _, err := m.Encode(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMetaDecode(b *testing.B) {
	enc, err := agentMeta("agent-0001", ServicePort{Service: "web", Port: 80, Weight: 100}, ServicePort{Service: "api", Port: 8443, Weight: 50}).Encode()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := DecodeMeta(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func TestDecodeMetaRefusesMappedAddress(t *testing.T) {
	b := []byte{metaVersion, byte(RoleAgent), 0, 2, 'a', '1', 16}
	b = append(b, netip.MustParseAddr("::ffff:192.0.2.1").AsSlice()...)
	b = append(b, 0)
	if m, err := DecodeMeta(b); !errors.Is(err, ErrBadMeta) {
		t.Fatalf("DecodeMeta = %+v, %v; want ErrBadMeta", m, err)
	}
}
