package fsm

import (
	"bytes"
	"errors"
	"testing"
)

func TestDirectorWitnessSurvivesLogAndSnapshotAndDefaultsToFalse(t *testing.T) {
	// An entry logged before the witness field existed: its body has no "witness" key.
	old := append([]byte{byte(TypeRegisterDirector), bodyVersion},
		`{"director":{"id":"d1","raft_addr":"10.0.0.1:7000","api_addr":"10.0.0.1:7080"}}`...)
	witness := Director{ID: "d2", RaftAddr: "10.0.0.2:7000", APIAddr: "10.0.0.2:7080", Witness: true}
	fresh, err := Encode(RegisterDirector{Director: witness})
	if err != nil {
		t.Fatal(err)
	}

	s := NewState()
	for _, entry := range [][]byte{old, fresh} {
		if err := s.Apply(entry); err != nil {
			t.Fatalf("apply %q: %v", entry, err)
		}
	}
	var snap bytes.Buffer
	if err := s.WriteSnapshot(&snap); err != nil {
		t.Fatal(err)
	}
	restored, err := ReadSnapshot(&snap)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []*State{s, restored} {
		if d, _ := st.Director("d1"); d.Witness {
			t.Errorf("director logged without the field is a witness: %+v", d)
		}
		if d, _ := st.Director("d2"); d != witness {
			t.Errorf("witness director %+v, want %+v", d, witness)
		}
	}
}

func TestRegisterDirectorAlwaysNamesTheSameBadField(t *testing.T) {
	// Both addresses are wrong: the error must name raft_addr every time, not whichever
	// a map iteration happens to reach first.
	bad := RegisterDirector{Director: Director{ID: "d1", RaftAddr: "nope", APIAddr: "nope"}}
	for range 50 {
		err := NewState().Check(bad)
		var fe *FieldError
		if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) {
			t.Fatalf("error %v, want a *FieldError wrapping ErrInvalid", err)
		}
		if fe.Field != "raft_addr" {
			t.Fatalf("error names %q, want raft_addr", fe.Field)
		}
	}
}
