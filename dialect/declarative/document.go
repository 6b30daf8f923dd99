// Package declarative is raftlvs's own configuration file: the whole desired table
// (services with their settings, health checks and policies, and their real servers) as
// one YAML document. `raftlvs export` writes it from a cluster, `raftlvs diff -f` and
// `raftlvs apply -f` read it back; fsm/plan measures it against the cluster. It is pure:
// bytes in, a plan.Table or bytes out. See DESIGN.md.
package declarative

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/raftlvs/raftlvs/fsm"
	"github.com/raftlvs/raftlvs/fsm/plan"
)

// FormatVersion is the document format this code writes and reads.
const FormatVersion = 1

// ErrBadDocument classifies a document that cannot be read or does not make a table; it
// also wraps fsm.ErrInvalid, so the CLI reports it like any invalid input.
var ErrBadDocument = fmt.Errorf("bad raftlvs document: %w", fsm.ErrInvalid)

// Document is the file: a format version and the services.
type Document struct {
	Version  int       `json:"version"`
	Services []Service `json:"services"`
}

// Service is one virtual service as the file gives it: every setting of fsm.Service by
// its JSON name (a setting added to fsm.Service is carried without a change here), the
// health check in its text form (check: http:/healthz,fall=2) or as JSON
// (health_check: {…}), and its real servers.
type Service struct {
	fsm.Service
	// Check is the health check in the text form of fsm.ParseHealthCheck; at most one of
	// check and health_check.
	Check       string       `json:"check,omitempty"`
	RealServers []RealServer `json:"real_servers,omitempty"`
}

// RealServer is one real server: the operator's settings only. Its service is the one it
// is listed under; who registered it, its drain and its health are the cluster's, never
// the file's (a drain in progress stays through an apply).
type RealServer struct {
	Addr netip.Addr `json:"addr"`
	// Port 0 (or absent) is the service's port.
	Port uint16 `json:"port,omitempty"`
	// Weight absent is fsm.DefaultWeight; 0 is a weight.
	Weight         *int             `json:"weight,omitempty"`
	UpperThreshold uint32           `json:"upper_threshold,omitempty"`
	LowerThreshold uint32           `json:"lower_threshold,omitempty"`
	Forwarding     fsm.Forwarding   `json:"forwarding,omitempty"`
	Check          string           `json:"check,omitempty"`
	HealthCheck    *fsm.HealthCheck `json:"health_check,omitempty"`
}

// stateFields are the fsm.RealServer settings a document leaves to the cluster.
var stateFields = []string{"service", "origin", "admin", "health", "health_reason", "health_since"}

// Parse reads a document (YAML, or JSON, which is YAML). Unknown keys, a format version
// other than FormatVersion, two services of one name or match, and a service's setting
// that fsm refuses are errors naming the service and the setting; the cluster validates
// the rest when the table is applied.
func Parse(data []byte) (*Document, error) {
	var d Document
	if err := yaml.UnmarshalStrict(data, &d); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadDocument, err)
	}
	if d.Version != FormatVersion {
		return nil, fmt.Errorf("%w: version %d: this raftlvs reads version %d (write version: %d at the top level)", ErrBadDocument, d.Version, FormatVersion, FormatVersion)
	}
	if _, err := d.Table(); err != nil {
		return nil, err
	}
	return &d, nil
}

// Table is the document as plan.Against takes it: services normalized (defaults filled
// in, a missing name derived from the match) and checked on their own, health checks in
// their JSON form, real servers under their service's name.
func (d *Document) Table() (plan.Table, error) {
	var t plan.Table
	names := map[string]int{}
	matches := map[fsm.MatchKey]int{}
	for i, ds := range d.Services {
		svc := *ds.Service.Clone()
		where := fmt.Sprintf("services[%d]", i)
		if svc.Name != "" {
			where += " (" + svc.Name + ")"
		}
		hc, err := checkOf(ds.Check, ds.HealthCheck)
		if err != nil {
			return plan.Table{}, fmt.Errorf("%w: %s: %w", ErrBadDocument, where, err)
		}
		svc.HealthCheck, svc.QuorumDown = hc, false
		fsm.NormalizeService(&svc)
		if err := fsm.ValidateService(&svc); err != nil {
			return plan.Table{}, fmt.Errorf("%w: %s: %w", ErrBadDocument, where, err)
		}
		if j, dup := names[svc.Name]; dup {
			return plan.Table{}, fmt.Errorf("%w: %s: the name %s is services[%d]'s too", ErrBadDocument, where, svc.Name, j)
		}
		names[svc.Name] = i
		if j, dup := matches[svc.Match()]; dup {
			return plan.Table{}, fmt.Errorf("%w: %s: %s is matched by services[%d] too", ErrBadDocument, where, svc.DescribeMatch(), j)
		}
		matches[svc.Match()] = i
		t.Services = append(t.Services, svc)
		seen := map[netip.AddrPort]int{}
		for j, drs := range ds.RealServers {
			at := fmt.Sprintf("%s: real_servers[%d]", where, j)
			rs, err := drs.realServer(&svc)
			if err != nil {
				return plan.Table{}, fmt.Errorf("%w: %s: %w", ErrBadDocument, at, err)
			}
			ap := netip.AddrPortFrom(rs.Addr, rs.Port)
			if k, dup := seen[ap]; dup {
				return plan.Table{}, fmt.Errorf("%w: %s: %s is real_servers[%d] too", ErrBadDocument, at, ap, k)
			}
			seen[ap] = j
			t.RealServers = append(t.RealServers, rs)
		}
	}
	return t, nil
}

func (r RealServer) realServer(svc *fsm.Service) (fsm.RealServer, error) {
	if !r.Addr.IsValid() {
		return fsm.RealServer{}, &fsm.FieldError{Field: "addr", Reason: "required", Kind: fsm.ErrInvalid}
	}
	hc, err := checkOf(r.Check, r.HealthCheck)
	if err != nil {
		return fsm.RealServer{}, err
	}
	w := fsm.DefaultWeight
	if r.Weight != nil {
		w = *r.Weight
	}
	rs := fsm.RealServer{
		Service: svc.Name, Addr: r.Addr.Unmap(), Port: r.Port, Weight: w,
		UpperThreshold: r.UpperThreshold, LowerThreshold: r.LowerThreshold, Forwarding: r.Forwarding,
		HealthCheck: hc, Origin: fsm.OriginOperator, Admin: fsm.Active,
	}
	fsm.NormalizeRealServer(&rs, svc)
	if err := fsm.ValidateRealServer(&rs, svc); err != nil {
		return fsm.RealServer{}, err
	}
	return rs, nil
}

// checkOf is the check a file gives, in the text form or the JSON one.
func checkOf(text string, spec *fsm.HealthCheck) (*fsm.HealthCheck, error) {
	switch {
	case text != "" && spec != nil:
		return nil, &fsm.FieldError{Field: "check", Reason: "give check or health_check, not both", Kind: fsm.ErrInvalid}
	case text != "":
		return fsm.ParseHealthCheck(text)
	}
	return spec.Clone(), nil
}

// Export is the document of a cluster's table (as GET /v1/state gives it): every
// service, and the real servers an operator added. Those an agent registered are left
// out (their agent keeps them; an apply leaves them alone), and returned apart. A check
// is written in its text form when that reads back the same, else as JSON.
func Export(services []fsm.Service, servers []fsm.RealServer) (*Document, []fsm.RealServer) {
	d := &Document{Version: FormatVersion, Services: []Service{}}
	byService := map[string][]fsm.RealServer{}
	var agents []fsm.RealServer
	for _, rs := range servers {
		if rs.IsAgent() {
			agents = append(agents, rs)
			continue
		}
		byService[rs.Service] = append(byService[rs.Service], rs)
	}
	for _, s := range services {
		ds := Service{Service: *s.Clone()}
		ds.QuorumDown = false // the state's verdict
		ds.Check, ds.HealthCheck = checkText(s.HealthCheck)
		for _, rs := range byService[s.Name] {
			w := rs.Weight
			drs := RealServer{
				Addr: rs.Addr, Port: rs.Port, Weight: &w, UpperThreshold: rs.UpperThreshold,
				LowerThreshold: rs.LowerThreshold, Forwarding: rs.Forwarding,
			}
			drs.Check, drs.HealthCheck = checkText(rs.HealthCheck)
			ds.RealServers = append(ds.RealServers, drs)
		}
		d.Services = append(d.Services, ds)
	}
	return d, agents
}

// checkText is a spec as the file writes it: the text form if it reads back as the same
// spec, else the spec itself.
func checkText(hc *fsm.HealthCheck) (string, *fsm.HealthCheck) {
	if hc == nil {
		return "", nil
	}
	text := hc.String()
	back, err := fsm.ParseHealthCheck(text)
	if err != nil || !sameJSON(back, hc) {
		return "", hc.Clone()
	}
	return text, nil
}

func sameJSON(a, b any) bool {
	ja, erra := json.Marshal(a)
	jb, errb := json.Marshal(b)
	return erra == nil && errb == nil && bytes.Equal(ja, jb)
}

// Marshal writes the document as YAML, keys in the order of the Go fields (name first,
// real servers last), after a comment header (each line of header prefixed with "# ").
func (d *Document) Marshal(header string) ([]byte, error) {
	js, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("encode the document: %w", err)
	}
	body, err := orderedYAML(js)
	if err != nil {
		return nil, fmt.Errorf("encode the document: %w", err)
	}
	var b bytes.Buffer
	for line := range strings.SplitSeq(strings.TrimRight(header, "\n"), "\n") {
		if header != "" {
			b.WriteString(strings.TrimRight("# "+line, " ") + "\n")
		}
	}
	b.Write(body)
	return b.Bytes(), nil
}
