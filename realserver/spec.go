package realserver

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/raftlvs/raftlvs/fsm"
)

// ServiceSpec is one service this real server serves, as the operator names it.
type ServiceSpec struct {
	Name string
	// Port is where this real server listens; 0 means the service's port. DR and TUN
	// real servers always receive the service's port.
	Port   uint16
	Weight int
}

// ErrBadSpec classifies errors in a service spec or agent config.
var ErrBadSpec = errors.New("bad agent config")

func (s ServiceSpec) String() string {
	out := s.Name
	if s.Port != 0 {
		out += ":" + strconv.Itoa(int(s.Port))
	}
	return out + "@" + strconv.Itoa(s.Weight)
}

// ParseServiceSpec parses the agent's flag syntax NAME[:PORT][@WEIGHT]: "web",
// "web:8080", "web@10", "web:8080@0". Service names may contain colons (the default name
// of an IPv6 service does), so only a trailing ":DIGITS" is read as the port.
func ParseServiceSpec(s string) (ServiceSpec, error) {
	bad := func(format string, args ...any) (ServiceSpec, error) {
		return ServiceSpec{}, fmt.Errorf("service %q: %s: %w", s, fmt.Sprintf(format, args...), ErrBadSpec)
	}
	spec := ServiceSpec{Weight: fsm.DefaultWeight}
	rest := s
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		w, err := strconv.Atoi(rest[i+1:])
		if err != nil {
			return bad("weight %q is not a number", rest[i+1:])
		}
		if w < 0 || w > fsm.MaxWeight {
			return bad("weight %d is out of range 0..%d", w, fsm.MaxWeight)
		}
		spec.Weight = w
		rest = rest[:i]
	}
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && isDigits(rest[i+1:]) {
		p, err := strconv.ParseUint(rest[i+1:], 10, 16)
		if err != nil || p == 0 {
			return bad("port %q is out of range 1..65535", rest[i+1:])
		}
		spec.Port = uint16(p)
		rest = rest[:i]
	}
	spec.Name = rest
	if err := spec.Validate(); err != nil {
		return ServiceSpec{}, fmt.Errorf("service %q: %w", s, err)
	}
	return spec, nil
}

// ParseServiceSpecs parses one spec per element and rejects a service named twice.
func ParseServiceSpecs(args []string) ([]ServiceSpec, error) {
	out := make([]ServiceSpec, 0, len(args))
	seen := map[string]bool{}
	for _, a := range args {
		spec, err := ParseServiceSpec(a)
		if err != nil {
			return nil, err
		}
		if seen[spec.Name] {
			return nil, fmt.Errorf("service %q is named twice: %w", spec.Name, ErrBadSpec)
		}
		seen[spec.Name] = true
		out = append(out, spec)
	}
	return out, nil
}

// Validate checks a spec built other than by ParseServiceSpec.
func (s ServiceSpec) Validate() error {
	if err := validateID(s.Name); err != nil {
		return fmt.Errorf("service name: %w", err)
	}
	if s.Weight < 0 || s.Weight > fsm.MaxWeight {
		return fmt.Errorf("weight %d is out of range 0..%d: %w", s.Weight, fsm.MaxWeight, ErrBadSpec)
	}
	return nil
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// validateID applies the cluster's naming rule (as fsm applies it to service names) to
// service names and agent ids: letters, digits and - _ . :, starting with a letter or digit.
func validateID(id string) error {
	if id == "" || len(id) > fsm.MaxNameLen {
		return fmt.Errorf("%q must be 1..%d characters: %w", id, fsm.MaxNameLen, ErrBadSpec)
	}
	for i, c := range id {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			i > 0 && (c == '-' || c == '_' || c == '.' || c == ':')
		if !ok {
			return fmt.Errorf("%q: use letters, digits and - _ . : (starting with a letter or digit): %w", id, ErrBadSpec)
		}
	}
	return nil
}
