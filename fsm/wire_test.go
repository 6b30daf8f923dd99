package fsm

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

// fullService and fullServer set every field: a field added to Service or RealServer
// fails TestWireFixturesSetEveryField until it is set here, and then the round trip
// until wire.go carries it.
func fullService() Service {
	return Service{
		Name: "web", Protocol: TCP, VIP: netip.MustParseAddr("2001:db8::10"), Port: 443, FWMark: 7,
		Family: IPv6, Scheduler: "sh", SchedFlags: []string{FlagSHFallback, FlagSHPort},
		Persistence: 300, PersistMask: 64, PersistEngine: "sip", OnePacket: true, Forwarding: DR,
		HealthCheck: &HealthCheck{Type: "http", Path: "/healthz", Status: []string{"200-299"}, Rise: 2, Fall: 3},
		OnDown:      DownInhibit, FailOpenPercent: 50, Quorum: 4, Hysteresis: 1,
		SorryServer: netip.MustParseAddrPort("[2001:db8::99]:8080"), QuorumDown: true,
	}
}

func fullServer() RealServer {
	return RealServer{
		Service: "web", Addr: netip.MustParseAddr("fe80::1%eth0"), Port: 8443, Weight: -3,
		UpperThreshold: 1000, LowerThreshold: 10, Forwarding: TUN,
		HealthCheck: &HealthCheck{Type: "tcp", Port: 9000, TimeoutMS: 500},
		Origin:      AgentOrigin("rs1"), Admin: Draining, Health: HealthDown, HealthReason: "connect: refused",
		HealthSince: time.Date(2026, 12, 1, 10, 0, 0, 123, time.FixedZone("", 3600)),
	}
}

func TestWireFixturesSetEveryField(t *testing.T) {
	for _, v := range []any{fullService(), fullServer()} {
		rv := reflect.ValueOf(v)
		for i := range rv.NumField() {
			if rv.Field(i).IsZero() {
				t.Errorf("%T.%s is zero in the fixture: set it, so the round trip covers it", v, rv.Type().Field(i).Name)
			}
		}
	}
}

// wireCommands has each command of the binary encoding, nested batches included.
func wireCommands() []Command {
	svc, rs := fullService(), fullServer()
	plain := RealServer{Service: "web", Addr: netip.MustParseAddr("10.0.0.1"), Weight: 1, Origin: OriginOperator, Admin: Active, Health: HealthUnknown}
	table := []Command{
		AddService{Service: svc}, EditService{Service: svc}, RemoveService{Name: "web"},
		AddService{Service: Service{Name: "mark", FWMark: 1, Family: IPv4}},
		AddRealServer{RealServer: rs}, EditRealServer{RealServer: rs}, UpsertAgentRS{RealServer: rs},
		AddRealServer{RealServer: plain},
		RemoveRealServer{Key: rs.Key()},
	}
	return append(table, Batch{Commands: append([]Command{Batch{Commands: table}}, table...)})
}

// encodeJSON is a command's version 1 entry, as logs before wire.go hold it: a staged
// chunk is framed as ever, its commands JSON.
func encodeJSON(t testing.TB, c Command) []byte {
	t.Helper()
	var body any = c
	switch c := c.(type) {
	case Batch:
		var bb batchBody
		for _, sub := range c.Commands {
			bb.Entries = append(bb.Entries, encodeJSON(t, sub))
		}
		body = bb
	case StageChunk:
		out, err := encodeStage(StageChunk{Tx: c.Tx, Seq: c.Seq, At: c.At}, &names{}) // the header alone
		if err != nil {
			t.Fatal(err)
		}
		for _, sub := range c.Commands {
			e := encodeJSON(t, sub)
			out = append(binary.AppendUvarint(out, uint64(len(e))), e...)
		}
		return out
	}
	js, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte{byte(c.Type()), bodyVersion}, js...)
}

func TestWireRoundTripsAndReadsAsTheJSONEntries(t *testing.T) {
	for _, c := range wireCommands() {
		entry, err := Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		if entry[1] != bodyBinary {
			t.Fatalf("%T encoded as body version %d", c, entry[1])
		}
		got, err := Decode(entry)
		if err != nil {
			t.Fatalf("%T: %v", c, err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Errorf("%T round trip:\n got %#v\nwant %#v", c, got, c)
		}
		old, err := Decode(encodeJSON(t, c))
		if err != nil {
			t.Fatalf("%T as JSON: %v", c, err)
		}
		if !reflect.DeepEqual(got, old) {
			t.Errorf("%T: the binary entry reads as\n %#v\nthe JSON one as\n %#v", c, got, old)
		}
		if js := encodeJSON(t, c); len(entry) >= len(js) {
			t.Errorf("%T: %d bytes binary, %d as JSON", c, len(entry), len(js))
		}
	}
}

func TestWireRefusesDamagedEntries(t *testing.T) {
	for _, c := range wireCommands() {
		entry, err := Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		for n := 2; n < len(entry); n++ {
			if _, err := Decode(entry[:n]); !errors.Is(err, ErrInvalid) {
				t.Fatalf("%T cut to %d of %d bytes: %v, want ErrInvalid", c, n, len(entry), err)
			}
		}
		if _, err := Decode(append(entry[:len(entry):len(entry)], 0)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%T with a byte more: %v, want ErrInvalid", c, err)
		}
	}
	// The draft binary body (version 2, never released) is a version this code does not
	// know: a node that meets one stops rather than misread it.
	entry, err := Encode(AddRealServer{RealServer: fullServer()})
	if err != nil {
		t.Fatal(err)
	}
	entry[1] = 2
	if _, err := Decode(entry); !errors.Is(err, ErrUnknownCommand) {
		t.Errorf("a body of version 2: %v, want ErrUnknownCommand", err)
	}
	// A type that has no binary body is not guessed at: the node stops (Decode's rule).
	if _, err := Decode([]byte{byte(TypeSetClusterID), bodyBinary}); !errors.Is(err, ErrUnknownCommand) {
		t.Errorf("SetClusterID as a binary body: %v, want ErrUnknownCommand", err)
	}
}

// What JSON cannot say, the binary body does not either: a sorry server's port without
// its address, a health check of null, a time beyond the year 9999.
func TestWireReadsOnlyWhatJSONCanSay(t *testing.T) {
	svc := Service{Name: "web", SorryServer: netip.AddrPortFrom(netip.Addr{}, 8080)}
	entry, err := Encode(AddService{Service: svc})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Decode(entry); err != nil || got.(AddService).Service.SorryServer != (netip.AddrPort{}) {
		t.Errorf("a sorry port without an address read as %v, %v; want none", got, err)
	}
	// A real server's fields in order (wire.realServer), its health check the JSON null.
	w := wire{b: []byte{byte(TypeAddRealServer), bodyBinary}, names: &names{}}
	w.name("web")
	w.addr(netip.MustParseAddr("10.0.0.1"))
	w.uint(80)
	w.int(1)
	w.uint(0)
	w.uint(0)
	w.sym("")
	w.bytes([]byte("null"))
	for range 3 { // origin, admin, health
		w.sym("")
	}
	w.str("")
	w.time(time.Time{})
	nullCheck := w.b
	if got, err := Decode(nullCheck); err != nil || got.(AddRealServer).RealServer.HealthCheck != nil {
		t.Errorf("a health check of null read as %#v, %v; want none", got, err)
	}
	late := RealServer{Service: "web", HealthSince: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	entry, err = Encode(AddRealServer{RealServer: late})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(entry); !errors.Is(err, ErrInvalid) {
		t.Errorf("a time in the year 10000: %v, want ErrInvalid", err)
	}
}

// A batch nested deeper than MaxBatchDepth is refused, as in JSON.
func TestWireBoundsNesting(t *testing.T) {
	var c Command = AddRealServer{RealServer: fullServer()}
	for range MaxBatchDepth + 1 {
		c = Batch{Commands: []Command{c}}
	}
	entry, err := Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(entry); !errors.Is(err, ErrInvalid) {
		t.Errorf("batch nested %d deep: %v, want ErrInvalid", MaxBatchDepth+1, err)
	}
}

// FuzzDecode: no entry makes Decode panic, and what it accepts (binary or JSON, a staged
// chunk of binary entries included) encodes to an entry that decodes and encodes to itself.
func FuzzDecode(f *testing.F) {
	for _, c := range wireCommands() {
		entry, err := Encode(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(entry)
	}
	chunk, err := Encode(StageChunk{Tx: "tx", Seq: 1, At: time.Unix(1e9, 0).UTC(), Commands: wireCommands()[:9]})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(chunk)
	f.Fuzz(func(t *testing.T, entry []byte) {
		c, err := Decode(entry)
		if err != nil {
			return
		}
		again, err := Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Decode(again)
		if err != nil {
			t.Fatalf("%T re-encoded does not decode: %v", c, err)
		}
		if third, err := Encode(back); err != nil || !bytes.Equal(third, again) {
			t.Fatalf("%T re-encoded differs: %v\n%q\n%q", c, err, again, third)
		}
	})
}
