package api

import (
	"fmt"
	"net/netip"

	"github.com/raftlvs/raftlvs/fsm"
)

// RealServerRequest is the body of POST /v1/services/{name}/servers and of
// PUT …/servers/{addr}/{port}, and the real_server of a batch command. PUT is a full
// replacement with the same defaults as POST: a field left out takes its default (weight 1,
// admin active, forwarding inherited), it does not keep the old value. The health verdict
// is not the operator's to set and is always kept.
type RealServerRequest struct {
	// Service is taken from the path; in a body it is optional and must agree with it.
	Service string     `json:"service,omitempty"`
	Addr    netip.Addr `json:"addr"`
	// Port 0 means the service's port (a fwmark service's real servers keep 0).
	Port uint16 `json:"port,omitempty"`
	// Weight is a pointer because 0 is a legal explicit weight; absent means fsm.DefaultWeight.
	Weight         *int           `json:"weight,omitempty"`
	UpperThreshold uint32         `json:"upper_threshold,omitempty"`
	LowerThreshold uint32         `json:"lower_threshold,omitempty"`
	Forwarding     fsm.Forwarding `json:"forwarding,omitempty"`
	Admin          fsm.AdminState `json:"admin,omitempty"`
	// HealthCheck overrides the service's check for this real server; absent: the
	// service's.
	HealthCheck *fsm.HealthCheck `json:"health_check,omitempty"`
}

// RealServerRequestFrom is the request that recreates rs as it is.
func RealServerRequestFrom(rs fsm.RealServer) RealServerRequest {
	w := rs.Weight
	return RealServerRequest{
		Service: rs.Service, Addr: rs.Addr, Port: rs.Port, Weight: &w,
		UpperThreshold: rs.UpperThreshold, LowerThreshold: rs.LowerThreshold,
		Forwarding: rs.Forwarding, Admin: rs.Admin, HealthCheck: rs.HealthCheck.Clone(),
	}
}

// RealServer is the real server the request describes, added by an operator.
func (r RealServerRequest) RealServer() fsm.RealServer {
	w := fsm.DefaultWeight
	if r.Weight != nil {
		w = *r.Weight
	}
	return fsm.RealServer{
		Service: r.Service, Addr: r.Addr, Port: r.Port, Weight: w,
		UpperThreshold: r.UpperThreshold, LowerThreshold: r.LowerThreshold,
		Forwarding: r.Forwarding, Admin: r.Admin, Origin: fsm.OriginOperator,
		HealthCheck: r.HealthCheck.Clone(),
	}
}

// Batch operations: the operator's commands only (health, agents and directors have their
// own paths).
const (
	OpAddService       = "add_service"
	OpEditService      = "edit_service"
	OpRemoveService    = "remove_service"
	OpAddRealServer    = "add_real_server"
	OpEditRealServer   = "edit_real_server"
	OpRemoveRealServer = "remove_real_server"
)

// BatchRequest is the body of POST /v1/batch: commands applied in order, all or nothing.
type BatchRequest struct {
	Commands []BatchCommand `json:"commands"`
}

// BatchCommand is one operation of a batch. Exactly the payload its op needs is set:
// service (add/edit service), name (remove service), real_server (add/edit real server),
// key (remove real server).
type BatchCommand struct {
	Op         string             `json:"op"`
	Service    *fsm.Service       `json:"service,omitempty"`
	Name       string             `json:"name,omitempty"`
	RealServer *RealServerRequest `json:"real_server,omitempty"`
	Key        *fsm.RSKey         `json:"key,omitempty"`
}

// BatchCommandFor turns an operator command into its wire form (restore uses it).
func BatchCommandFor(c fsm.Command) (BatchCommand, error) {
	switch c := c.(type) {
	case fsm.AddService:
		return BatchCommand{Op: OpAddService, Service: c.Service.Clone()}, nil
	case fsm.EditService:
		return BatchCommand{Op: OpEditService, Service: c.Service.Clone()}, nil
	case fsm.RemoveService:
		return BatchCommand{Op: OpRemoveService, Name: c.Name}, nil
	case fsm.AddRealServer:
		r := RealServerRequestFrom(c.RealServer)
		return BatchCommand{Op: OpAddRealServer, RealServer: &r}, nil
	case fsm.EditRealServer:
		r := RealServerRequestFrom(c.RealServer)
		return BatchCommand{Op: OpEditRealServer, RealServer: &r}, nil
	case fsm.RemoveRealServer:
		k := c.Key
		return BatchCommand{Op: OpRemoveRealServer, Key: &k}, nil
	}
	return BatchCommand{}, fmt.Errorf("command %T is not an operator batch command: %w", c, fsm.ErrInvalid)
}

// Command turns a batch command into an fsm command; field prefixes error field names.
func (b BatchCommand) Command(field string) (fsm.Command, error) {
	// Which parts the op wants; no map: a restore converts 110,000 of these.
	var want struct{ service, name, realServer, key bool }
	var c fsm.Command
	switch b.Op {
	case OpAddService, OpEditService:
		want.service = true
		if b.Service == nil {
			return nil, fieldErr(field+".service", fsm.ErrInvalid, "required by op %s", b.Op)
		}
		if b.Op == OpAddService {
			c = fsm.AddService{Service: *b.Service.Clone()}
		} else {
			c = fsm.EditService{Service: *b.Service.Clone()}
		}
	case OpRemoveService:
		want.name = true
		if b.Name == "" {
			return nil, fieldErr(field+".name", fsm.ErrInvalid, "required by op %s", b.Op)
		}
		c = fsm.RemoveService{Name: b.Name}
	case OpAddRealServer, OpEditRealServer:
		want.realServer = true
		if b.RealServer == nil {
			return nil, fieldErr(field+".real_server", fsm.ErrInvalid, "required by op %s", b.Op)
		}
		if b.RealServer.Service == "" {
			return nil, fieldErr(field+".real_server.service", fsm.ErrInvalid, "required in a batch")
		}
		rs := b.RealServer.RealServer()
		if b.Op == OpAddRealServer {
			c = fsm.AddRealServer{RealServer: rs}
		} else {
			// An edit keeps the origin and the checks' verdict with its reason and time:
			// fsm.State.Prepare fills them in from the real server as the batch finds it.
			rs.Origin, rs.Health = "", ""
			c = fsm.EditRealServer{RealServer: rs}
		}
	case OpRemoveRealServer:
		want.key = true
		if b.Key == nil {
			return nil, fieldErr(field+".key", fsm.ErrInvalid, "required by op %s", b.Op)
		}
		c = fsm.RemoveRealServer{Key: *b.Key}
	case "":
		return nil, fieldErr(field+".op", fsm.ErrInvalid, "required")
	default:
		return nil, fieldErr(field+".op", fsm.ErrInvalid, "unknown op %q (one of %s %s %s %s %s %s)", b.Op,
			OpAddService, OpEditService, OpRemoveService, OpAddRealServer, OpEditRealServer, OpRemoveRealServer)
	}
	for _, part := range [...]struct {
		name        string
		given, want bool
	}{
		{"service", b.Service != nil, want.service}, {"name", b.Name != "", want.name},
		{"real_server", b.RealServer != nil, want.realServer}, {"key", b.Key != nil, want.key},
	} {
		if part.given && !part.want {
			return nil, fieldErr(field+"."+part.name, fsm.ErrInvalid, "not allowed with op %s", b.Op)
		}
	}
	return c, nil
}

// Batch turns a batch request into one fsm.Batch.
func (r BatchRequest) Batch() (fsm.Batch, error) {
	if len(r.Commands) == 0 {
		return fsm.Batch{}, fieldErr("commands", fsm.ErrInvalid, "at least one command is required")
	}
	if len(r.Commands) > MaxBatchCommands {
		return fsm.Batch{}, fieldErr("commands", fsm.ErrInvalid, "%d commands exceed the limit of %d", len(r.Commands), MaxBatchCommands)
	}
	out := fsm.Batch{Commands: make([]fsm.Command, len(r.Commands))}
	for i, bc := range r.Commands {
		c, err := bc.Command("")
		if err != nil { // again, to name the field: no Sprintf for every good command
			_, err = bc.Command(fmt.Sprintf("commands[%d]", i))
			return fsm.Batch{}, err
		}
		out.Commands[i] = c
	}
	return out, nil
}

// Body limits: a batch carries a whole ipvsadm rule set, anything else one object.
const (
	MaxBodyBytes      = 1 << 20
	MaxBatchBodyBytes = 8 << 20
	MaxBatchCommands  = 20000
)

func fieldErr(field string, kind error, format string, args ...any) error {
	return &fsm.FieldError{Field: field, Reason: fmt.Sprintf(format, args...), Kind: kind}
}
