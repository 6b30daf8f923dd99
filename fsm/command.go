package fsm

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"
)

// CommandType is the first byte of every log entry. Values are never reused.
type CommandType uint8

const (
	TypeAddService       CommandType = 1
	TypeEditService      CommandType = 2
	TypeRemoveService    CommandType = 3
	TypeAddRealServer    CommandType = 4
	TypeEditRealServer   CommandType = 5
	TypeRemoveRealServer CommandType = 6
	TypeSetHealth        CommandType = 7
	TypeBatch            CommandType = 8
	TypeSetClusterID     CommandType = 9
	TypeUpsertAgentRS    CommandType = 10
	TypeSetHealths       CommandType = 13
	// 11 and 12 are the director commands (director.go), 14 to 16 the staged
	// transactions (staged.go).
)

// bodyVersion is the second byte of every log entry: the encoding of the body. A node
// refuses entries of a version it does not know rather than misread them.
const bodyVersion = 1

// Command is one change to the state.
type Command interface {
	Type() CommandType
	// check validates the command against s without changing it.
	check(s *State) error
	// mutate applies a command that check accepted.
	mutate(s *State)
}

// AddService creates a service. The name and the match (protocol/VIP/port or fwmark) must be new.
type AddService struct {
	Service Service `json:"service"`
}

// EditService replaces the settings of an existing service; its match may change if no other
// service has the new one. Real servers stay.
type EditService struct {
	Service Service `json:"service"`
}

// RemoveService deletes a service and all its real servers.
type RemoveService struct {
	Name string `json:"name"`
}

// AddRealServer adds a real server to an existing service.
type AddRealServer struct {
	RealServer RealServer `json:"real_server"`
}

// EditRealServer replaces the settings of an existing real server (its key stays).
type EditRealServer struct {
	RealServer RealServer `json:"real_server"`
}

// RemoveRealServer deletes one real server.
type RemoveRealServer struct {
	Key RSKey `json:"key"`
}

// SetHealth records a health-check verdict, why, and when the leader decided it.
type SetHealth struct {
	Key    RSKey     `json:"key"`
	Health Health    `json:"health"`
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since,omitzero"`
}

// SetHealths records many verdicts in one log entry: the leader commits the transitions
// its aggregation found in batches. An update for a real server that no longer exists is
// skipped.
type SetHealths struct {
	Updates []SetHealth `json:"updates"`
}

// SetClusterID names the cluster once, at bootstrap.
type SetClusterID struct {
	ID string `json:"id"`
}

// UpsertAgentRS adds or updates a real server that an agent registered. It never touches a
// real server an operator added.
type UpsertAgentRS struct {
	RealServer RealServer `json:"real_server"`
}

// Batch applies its commands in order, all or nothing (ipvsadm-format restore uses it).
type Batch struct {
	Commands []Command `json:"-"`
}

func (AddService) Type() CommandType       { return TypeAddService }
func (EditService) Type() CommandType      { return TypeEditService }
func (RemoveService) Type() CommandType    { return TypeRemoveService }
func (AddRealServer) Type() CommandType    { return TypeAddRealServer }
func (EditRealServer) Type() CommandType   { return TypeEditRealServer }
func (RemoveRealServer) Type() CommandType { return TypeRemoveRealServer }
func (SetHealth) Type() CommandType        { return TypeSetHealth }
func (SetHealths) Type() CommandType       { return TypeSetHealths }
func (Batch) Type() CommandType            { return TypeBatch }
func (SetClusterID) Type() CommandType     { return TypeSetClusterID }
func (UpsertAgentRS) Type() CommandType    { return TypeUpsertAgentRS }

// Encode turns a command into a log entry: type byte, body version byte, body: binary
// for the table's commands (wire.go), JSON for the others.
func Encode(c Command) ([]byte, error) { return encode(c, &names{}) }

// encode is Encode inside a batch or chunk, whose entries share nm (wire.go).
func encode(c Command, nm *names) ([]byte, error) {
	if sc, ok := c.(StageChunk); ok {
		return encodeStage(sc, nm)
	}
	if entry, ok, err := encodeBinary(c, nm); ok || err != nil {
		return entry, err
	}
	js, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", c, err)
	}
	return append([]byte{byte(c.Type()), bodyVersion}, js...), nil
}

// encodeEntries encodes each of cmds (a staged chunk in a snapshot).
func encodeEntries(cmds []Command) ([][]byte, error) {
	entries := make([][]byte, len(cmds))
	nm := &names{}
	for i, sub := range cmds {
		e, err := encode(sub, nm)
		if err != nil {
			return nil, fmt.Errorf("command %d: %w", i, err)
		}
		entries[i] = e
	}
	return entries, nil
}

// batchBody is a batch's JSON body (version 1, before wire.go): its entries as base64.
type batchBody struct {
	Entries [][]byte `json:"entries"`
}

// A chunk's body is framed, not JSON: a header (uvarint length, then JSON), then each
// command's entry (uvarint length, then the entry). A chunk is 20,000 commands, decoded on
// every node; carrying them as base64 strings in JSON, as a batch does, cost a third of
// the decoding.
type stageHeader struct {
	Tx  string    `json:"tx"`
	Seq int       `json:"seq"`
	At  time.Time `json:"at,omitzero"`
}

func encodeStage(c StageChunk, nm *names) ([]byte, error) {
	head, err := json.Marshal(stageHeader{Tx: c.Tx, Seq: c.Seq, At: c.At})
	if err != nil {
		return nil, fmt.Errorf("encode chunk %d of staged %s: %w", c.Seq, c.Tx, err)
	}
	out := append([]byte{byte(TypeStageChunk), bodyVersion}, binary.AppendUvarint(nil, uint64(len(head)))...)
	out = append(out, head...)
	for i, sub := range c.Commands {
		e, err := encode(sub, nm)
		if err != nil {
			return nil, fmt.Errorf("encode chunk %d of staged %s: command %d: %w", c.Seq, c.Tx, i, err)
		}
		out = binary.AppendUvarint(out, uint64(len(e)))
		out = append(out, e...)
	}
	return out, nil
}

// nextFrame splits one length-prefixed frame off b.
func nextFrame(b []byte) (frame, rest []byte, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, fmt.Errorf("truncated frame: %w", ErrInvalid)
	}
	return b[k : k+int(n)], b[k+int(n):], nil
}

// MaxBatchDepth bounds nesting so a hostile entry cannot exhaust the stack.
const MaxBatchDepth = 4

// Decode turns a log entry back into a command. An unknown type or body version is an
// error wrapping ErrUnknownCommand: the node must stop rather than skip it.
func Decode(entry []byte) (Command, error) { return decode(entry, 0, &names{}) }

func decode(entry []byte, depth int, nm *names) (Command, error) {
	if len(entry) < 2 {
		return nil, fmt.Errorf("decode log entry of %d bytes: %w", len(entry), ErrInvalid)
	}
	t, ver, body := CommandType(entry[0]), entry[1], entry[2:]
	switch {
	case ver == bodyBinary:
		c, err := decodeBinary(t, body, depth, nm)
		if err != nil {
			return nil, fmt.Errorf("decode command type %d: %w", t, err)
		}
		return c, nil
	case ver != bodyVersion:
		return nil, fmt.Errorf("command type %d body version %d: %w", t, ver, ErrUnknownCommand)
	}
	var c Command
	var err error
	switch t {
	case TypeAddService:
		c, err = decodeBody[AddService](body)
	case TypeEditService:
		c, err = decodeBody[EditService](body)
	case TypeRemoveService:
		c, err = decodeBody[RemoveService](body)
	case TypeAddRealServer:
		c, err = decodeBody[AddRealServer](body)
	case TypeEditRealServer:
		c, err = decodeBody[EditRealServer](body)
	case TypeRemoveRealServer:
		c, err = decodeBody[RemoveRealServer](body)
	case TypeSetHealth:
		c, err = decodeBody[SetHealth](body)
	case TypeSetHealths:
		c, err = decodeBody[SetHealths](body)
	case TypeSetClusterID:
		c, err = decodeBody[SetClusterID](body)
	case TypeUpsertAgentRS:
		c, err = decodeBody[UpsertAgentRS](body)
	case TypeRegisterDirector:
		c, err = decodeBody[RegisterDirector](body)
	case TypeRemoveDirector:
		c, err = decodeBody[RemoveDirector](body)
	case TypePutToken:
		c, err = decodeBody[PutToken](body)
	case TypeRevokeToken:
		c, err = decodeBody[RevokeToken](body)
	case TypeDeleteToken:
		c, err = decodeBody[DeleteToken](body)
	case TypeSetCA:
		c, err = decodeBody[SetCA](body)
	case TypeRecordCertificate:
		c, err = decodeBody[RecordCertificate](body)
	case TypeRevokeCertificate:
		c, err = decodeBody[RevokeCertificate](body)
	case TypeAddVIP:
		c, err = decodeBody[AddVIP](body)
	case TypeRemoveVIP:
		c, err = decodeBody[RemoveVIP](body)
	case TypeBatch:
		c, err = decodeBatch(body, depth, nm)
	case TypeStageChunk:
		c, err = decodeStage(body, depth, nm)
	case TypeCommitStaged:
		c, err = decodeBody[CommitStaged](body)
	case TypeAbortStaged:
		c, err = decodeBody[AbortStaged](body)
	default:
		return nil, fmt.Errorf("command type %d: %w", t, ErrUnknownCommand)
	}
	if err != nil {
		return nil, fmt.Errorf("decode command type %d: %w", t, err)
	}
	return c, nil
}

func decodeBody[T Command](body []byte) (Command, error) {
	var c T
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return c, nil
}

func decodeBatch(body []byte, depth int, nm *names) (Command, error) {
	var bb batchBody
	if err := json.Unmarshal(body, &bb); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	cmds, err := decodeEntries(bb.Entries, depth, nm)
	if err != nil {
		return nil, fmt.Errorf("batch %w", err)
	}
	return Batch{Commands: cmds}, nil
}

func decodeStage(body []byte, depth int, nm *names) (Command, error) {
	head, rest, err := nextFrame(body)
	if err != nil {
		return nil, err
	}
	var h stageHeader
	if err := json.Unmarshal(head, &h); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	var entries [][]byte
	for len(rest) > 0 {
		var e []byte
		if e, rest, err = nextFrame(rest); err != nil {
			return nil, fmt.Errorf("chunk %d of staged %s: %w", h.Seq, h.Tx, err)
		}
		entries = append(entries, e)
	}
	cmds, err := decodeEntries(entries, depth, nm)
	if err != nil {
		return nil, fmt.Errorf("chunk %d of staged %s: %w", h.Seq, h.Tx, err)
	}
	return StageChunk{Tx: h.Tx, Seq: h.Seq, At: h.At, Commands: cmds}, nil
}

// decodeEntries decodes the commands a batch or a chunk carries, one level deeper.
func decodeEntries(entries [][]byte, depth int, nm *names) ([]Command, error) {
	if depth >= MaxBatchDepth {
		return nil, fmt.Errorf("commands nested deeper than %d: %w", MaxBatchDepth, ErrInvalid)
	}
	cmds := make([]Command, len(entries))
	for i, e := range entries {
		sub, err := decode(e, depth+1, nm)
		if err != nil {
			return nil, fmt.Errorf("command %d: %w", i, err)
		}
		cmds[i] = sub
	}
	return cmds, nil
}
