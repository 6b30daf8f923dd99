package ipvsadm

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"testing"

	"github.com/raftlvs/raftlvs/fsm"
)

// FuzzParse: Parse never panics; what it accepts the fsm accepts, Write prints, and Parse
// reads back to the same rules (less the thresholds, which ipvsadm -S does not print), and
// writing those again gives the same bytes.
func FuzzParse(f *testing.F) {
	for _, name := range append(canonical, "messy.input", "anchors-example-gue.rules") {
		f.Add(readTestdata(f, name))
	}
	for _, seed := range []string{
		"-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.1.1 -m -w 70000\n",
		"-A -f 3000000000 -p\n-a -f 3000000000 -r 10.0.0.1 -x 5 -y 2\n",
		"-A -t [::1.2.3.4]:80 -s sh -b flag-3,sh-port\n",
		"-A -u 10.0.0.1:0 -p 9 -M 255.255.255.0 --pe sip -o\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		rules, err := Parse(bytes.NewReader(input))
		if err != nil {
			var le *LineError
			if !errors.As(err, &le) || le.Line < 1 {
				t.Fatalf("Parse error %v is not a *LineError with a line", err)
			}
			return
		}
		applyAll(t, rules.Commands())
		var out bytes.Buffer
		if err := rules.Write(&out); err != nil {
			t.Fatalf("Write of parsed rules: %v", err)
		}
		again, err := Parse(bytes.NewReader(out.Bytes()))
		if err != nil {
			t.Fatalf("Parse of Write's output: %v\n%s", err, out.Bytes())
		}
		if want := withoutThresholds(rules); !reflect.DeepEqual(again, want) {
			t.Fatalf("rules changed through Write and Parse:\n%s", ruleDiff(want, again))
		}
		var out2 bytes.Buffer
		if err := again.Write(&out2); err != nil || !bytes.Equal(out.Bytes(), out2.Bytes()) {
			t.Fatalf("second Write (%v) differs:\n%s\nfirst:\n%s", err, out2.Bytes(), out.Bytes())
		}
	})
}

func withoutThresholds(r *Rules) *Rules {
	c := &Rules{Services: r.Services, RealServers: make([]fsm.RealServer, len(r.RealServers))}
	for i, rs := range r.RealServers {
		rs.UpperThreshold, rs.LowerThreshold = 0, 0
		c.RealServers[i] = rs
	}
	return c
}

func ruleDiff(want, got *Rules) string {
	return fmt.Sprintf("want services %+v\n got services %+v\nwant servers %+v\n got servers %+v",
		want.Services, got.Services, want.RealServers, got.RealServers)
}

// benchmarkRules is a large table: 1000 services of 20 real servers each.
func benchmarkRules() *Rules {
	var r Rules
	for i := range 1000 {
		vip := netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1})
		svc := fsm.Service{Protocol: fsm.TCP, VIP: vip, Port: 80, Scheduler: "wlc", Forwarding: fsm.DR}
		fsm.NormalizeService(&svc)
		r.Services = append(r.Services, svc)
		for j := range 20 {
			addr := netip.AddrFrom4([4]byte{192, 168, byte(i), byte(j + 1)})
			r.RealServers = append(r.RealServers, fsm.RealServer{Service: svc.Name, Addr: addr, Port: 80, Weight: j})
		}
	}
	return &r
}

func BenchmarkWrite(b *testing.B) {
	rules := benchmarkRules()
	var out bytes.Buffer
	for b.Loop() {
		out.Reset()
		if err := rules.Write(&out); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(out.Len()))
}

func BenchmarkParse(b *testing.B) {
	var text bytes.Buffer
	if err := benchmarkRules().Write(&text); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(text.Len()))
	for b.Loop() {
		if _, err := Parse(bytes.NewReader(text.Bytes())); err != nil {
			b.Fatal(err)
		}
	}
}
