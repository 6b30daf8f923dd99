package keepalived

import "fmt"

// FindingKind says what became of a keepalived setting the plan does not carry over as is.
type FindingKind string

const (
	// Unmapped: the setting has no raftlvs counterpart and is left out (a VRRP instance,
	// a notify script, an SNMP name).
	Unmapped FindingKind = "unmapped"
	// Differs: the setting is carried over, but raftlvs behaves differently from
	// keepalived (a timeout clamped to the interval, a second checker dropped).
	Differs FindingKind = "differs"
	// Note: carried over as keepalived does it, and worth knowing (a default keepalived
	// applies with a warning, a VIP raftlvs's leader will own).
	Note FindingKind = "note"
)

// Finding is one entry of the report: a setting at a place in the files, and why it was
// not carried over as written.
type Finding struct {
	Pos     Pos         `json:"pos"`
	Kind    FindingKind `json:"kind"`
	Keyword string      `json:"keyword"`
	Message string      `json:"message"`
}

func (f Finding) String() string {
	return fmt.Sprintf("%s: %s: %s: %s", f.Pos, f.Kind, f.Keyword, f.Message)
}
