package fsm

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
)

// CheckIdentical reports how a and b differ in anything they hold, the indexes and
// counters derived from the facts included (Equal compares the facts alone). The journal
// is not compared: it is what a state remembers of its history, not part of it.
func CheckIdentical(a, b *State) error {
	var errs []error
	differ := func(what string, same bool) {
		if !same {
			errs = append(errs, fmt.Errorf("%s differ", what))
		}
	}
	differ("cluster ids", a.clusterID == b.clusterID)
	differ("versions", a.version == b.version)
	differ("services", reflect.DeepEqual(a.services, b.services))
	differ("real servers", reflect.DeepEqual(a.servers, b.servers))
	differ("directors", maps.Equal(a.directors, b.directors))
	differ("match indexes", maps.Equal(a.matches, b.matches))
	differ("staged transactions", reflect.DeepEqual(a.staged, b.staged))
	differ("staged command counts", a.stagedCommands == b.stagedCommands)
	return errors.Join(errs...)
}

// CheckInvariants reports where the indexes and counters of s disagree with its facts.
func CheckInvariants(s *State) error {
	var errs []error
	matches := map[MatchKey]string{}
	for name, svc := range s.services {
		if svc.Name != name {
			errs = append(errs, fmt.Errorf("service %s is stored as %s", svc.Name, name))
		}
		matches[svc.Match()] = name
	}
	if !maps.Equal(matches, s.matches) {
		errs = append(errs, fmt.Errorf("match index %v, want %v", s.matches, matches))
	}
	for name, servers := range s.servers {
		if _, ok := s.services[name]; !ok || len(servers) == 0 {
			errs = append(errs, fmt.Errorf("real servers of %s: %d, service exists %v", name, len(servers), ok))
		}
		for k, rs := range servers {
			if rs.Key() != k {
				errs = append(errs, fmt.Errorf("real server %v stored as %v", rs.Key(), k))
			}
		}
	}
	n := 0
	for _, tx := range s.staged {
		n += tx.commands
	}
	if n != s.stagedCommands {
		errs = append(errs, fmt.Errorf("%d staged commands counted, %d staged", s.stagedCommands, n))
	}
	if len(s.undo) != 0 {
		errs = append(errs, fmt.Errorf("%d undo entries left over", len(s.undo)))
	}
	return errors.Join(errs...)
}
