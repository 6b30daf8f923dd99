package fsm

import (
	"fmt"
	"net/netip"
	"testing"
)

// restoreChunk is what `raftlvs restore` of 1000 services with 10 real servers each
// sends: one batch.
func restoreChunk(first int) Batch {
	var b Batch
	for i := first; i < first+1000; i++ {
		vip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		name := fmt.Sprintf("svc%d", i)
		b.Commands = append(b.Commands, AddService{Service: Service{Name: name, Protocol: TCP, VIP: vip, Port: 80, Scheduler: "wrr", Forwarding: DR}})
		for j := range 10 {
			rs := netip.AddrFrom4([4]byte{172, 16, byte(j), byte(i)})
			b.Commands = append(b.Commands, AddRealServer{RealServer: RealServer{Service: name, Addr: rs, Weight: 1}})
		}
	}
	return b
}

func loadedState(b *testing.B, services int) *State {
	b.Helper()
	s := NewState()
	for first := 0; first < services; first += 1000 {
		p, err := s.Prepare(restoreChunk(first))
		if err == nil {
			err = s.Execute(p)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	return s
}

// BenchmarkRestoreChunk prepares and applies 1000 more services × 10 in a state of 1k,
// 10k or 50k services × 10, as the leader does (Prepare) and every node does (Execute).
// Neither copies the state, so the cost does not grow with it.
func BenchmarkRestoreChunk(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 50_000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			base := loadedState(b, n)
			chunk := restoreChunk(n)
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				s := base.Clone()
				b.StartTimer()
				p, err := s.Prepare(chunk)
				if err != nil {
					b.Fatal(err)
				}
				if err := s.Execute(p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFailedBatch is a batch of 1000 services × 10 that fails at its last command,
// undone in place, in a state of 1k, 10k or 50k services × 10.
func BenchmarkFailedBatch(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 50_000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			s := loadedState(b, n)
			p, err := s.Prepare(restoreChunk(n))
			if err != nil {
				b.Fatal(err)
			}
			bad := p.(Batch)
			bad.Commands = append(bad.Commands, RemoveService{Name: "nope"})
			b.ReportAllocs()
			for b.Loop() {
				if err := s.Execute(bad); err == nil {
					b.Fatal("the batch was accepted")
				}
			}
		})
	}
}

// BenchmarkFreeze is what a Raft snapshot costs the apply path: freezing the state of 1k,
// 10k or 50k services × 10 (writing it happens beside Apply).
func BenchmarkFreeze(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 50_000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			s := loadedState(b, n)
			b.ReportAllocs()
			for b.Loop() {
				_ = s.Freeze()
			}
		})
	}
}

// BenchmarkDecodeChunk decodes a staged chunk of 1000 services × 10, as every director
// does with each chunk of a restore: its commands as JSON (body version 1, before
// wire.go) and as the binary body.
func BenchmarkDecodeChunk(b *testing.B) {
	chunk := StageChunk{Tx: "restore", Seq: 0, Commands: restoreChunk(0).Commands}
	binaryEntry, err := Encode(chunk)
	if err != nil {
		b.Fatal(err)
	}
	jsonEntry := encodeJSON(b, chunk)
	for _, c := range []struct {
		body  string
		entry []byte
	}{{"json", jsonEntry}, {"binary", binaryEntry}} {
		b.Run("body="+c.body, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decode(c.entry); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(c.entry)), "entry-bytes")
		})
	}
}
