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

// BenchmarkRestoreChunkInto9kServices prepares and applies the last 1000 services of a
// 10,000-service restore, as the leader does (Prepare) and every node does (Execute).
func BenchmarkRestoreChunkInto9kServices(b *testing.B) {
	base := NewState()
	for first := 0; first < 9000; first += 1000 {
		p, err := base.Prepare(restoreChunk(first))
		if err == nil {
			err = base.Execute(p)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	chunk := restoreChunk(9000)
	b.ResetTimer()
	for b.Loop() {
		s := base.Clone()
		p, err := s.Prepare(chunk)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Execute(p); err != nil {
			b.Fatal(err)
		}
	}
}
