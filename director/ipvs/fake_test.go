package ipvs

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"
)

// servicesSnapshot lists the keys without counting an operation.
func (f *Fake) servicesSnapshot() []ServiceKey {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []ServiceKey
	for k := range f.services {
		out = append(out, k)
	}
	return out
}

func TestFakeBehavesLikeTheKernel(t *testing.T) {
	f := NewFake()
	svc := Service{Family: FamilyIPv4, Protocol: ProtocolTCP, Address: webVIP, Port: 80, Scheduler: "wlc", Netmask: 0xffffffff}
	d := Destination{Address: netip.MustParseAddr("10.0.0.1"), Port: 80, Weight: 1}
	v6 := Service{Family: FamilyIPv6, Protocol: ProtocolTCP, Address: dnsVIP, Port: 80, Scheduler: "wlc"}
	steps := []struct {
		name string
		op   func() error
		want error
	}{
		{"update missing service", func() error { return f.UpdateService(svc) }, syscall.ESRCH},
		{"delete missing service", func() error { return f.DeleteService(svc) }, syscall.ESRCH},
		{"add service", func() error { return f.AddService(svc) }, nil},
		{"add duplicate service", func() error { return f.AddService(svc) }, syscall.EEXIST},
		{"IPv6 netmask 0", func() error { return f.AddService(v6) }, syscall.EINVAL},
		{"update missing destination", func() error { return f.UpdateDestination(svc, d) }, syscall.ENOENT},
		{"add destination", func() error { return f.AddDestination(svc, d) }, nil},
		{"add duplicate destination", func() error { return f.AddDestination(svc, d) }, syscall.EEXIST},
		{"delete destination", func() error { return f.DeleteDestination(svc, d) }, nil},
		{"delete missing destination", func() error { return f.DeleteDestination(svc, d) }, syscall.ENOENT},
	}
	for _, s := range steps {
		if err := s.op(); !errors.Is(err, s.want) || (s.want == nil && err != nil) {
			t.Errorf("%s: %v, want %v", s.name, err, s.want)
		}
	}
	got, _ := f.Services()
	if len(got) != 1 || got[0].Flags != FlagHashed || !got[0].Equal(svc) {
		t.Errorf("Services() = %+v, want the service with HASHED added", got)
	}
	if ops := f.Ops(); ops.ServiceAdds != 3 || ops.DestinationDeletes != 2 || ops.ServiceDumps != 1 {
		t.Errorf("Ops() = %s", ops)
	}
}
