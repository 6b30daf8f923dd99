package fsm

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestApplyRefusesUnknownCommands(t *testing.T) {
	tests := map[string][]byte{
		"unknown type":    {200, bodyVersion, '{', '}'},
		"unknown version": {byte(TypeAddService), 9, '{', '}'},
	}
	for name, entry := range tests {
		t.Run(name, func(t *testing.T) {
			if err := NewState().Apply(entry); !errors.Is(err, ErrUnknownCommand) {
				t.Fatalf("got %v, want ErrUnknownCommand", err)
			}
		})
	}
	if err := NewState().Apply([]byte{1}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("truncated entry: got %v", err)
	}
}

func TestSnapshotRefusesInvalidContent(t *testing.T) {
	bad := `{"format":1,"services":[{"name":"x","protocol":"tcp","vip":"10.0.0.1","port":80,"family":"ipv4","scheduler":"nope","persist_mask":32,"forwarding":"nat"}]}`
	if _, err := ReadSnapshot(bytes.NewBufferString(bad)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("got %v, want ErrInvalid", err)
	}
	if _, err := ReadSnapshot(bytes.NewBufferString(`{"format":9}`)); !errors.Is(err, ErrUnknownCommand) {
		t.Fatalf("got %v, want a refused format", err)
	}
}

// FuzzApply feeds arbitrary log entries: Apply must never panic, and an entry it accepts
// must survive a snapshot round trip.
func FuzzApply(f *testing.F) {
	for _, c := range []Command{
		AddService{Service: webService()},
		Batch{Commands: []Command{AddService{Service: webService()}, RemoveService{Name: "web"}}},
		SetHealth{Key: RSKey{Service: "web", Addr: rs4, Port: 80}, Health: HealthDown},
		StageChunk{Tx: "tx", At: time.Unix(1e9, 0).UTC(), Commands: []Command{AddService{Service: webService()}, RemoveService{Name: "web"}}},
	} {
		e, err := Encode(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(e)
	}
	f.Fuzz(func(t *testing.T, entry []byte) {
		s := NewState()
		if err := s.Apply(entry); err != nil {
			return
		}
		var buf bytes.Buffer
		if err := s.WriteSnapshot(&buf); err != nil {
			t.Fatal(err)
		}
		r, err := ReadSnapshot(&buf)
		if err != nil {
			t.Fatalf("accepted state does not restore: %v", err)
		}
		if !r.Equal(s) {
			t.Fatal("snapshot round trip changed the state")
		}
	})
}

func TestTruncatedChunkIsRejectedNotFatal(t *testing.T) {
	entry, err := Encode(StageChunk{Tx: "tx", At: time.Unix(1e9, 0).UTC(), Commands: []Command{AddService{Service: webService()}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(entry); err != nil {
		t.Fatalf("whole chunk: %v", err)
	}
	// Cut anywhere, it is refused: inside a frame by the decoder, after the header by
	// Apply (a chunk of no commands).
	for cut := 2; cut < len(entry); cut++ {
		if err := NewState().Apply(entry[:cut]); !errors.Is(err, ErrInvalid) {
			t.Fatalf("chunk cut at %d of %d: %v, want ErrInvalid", cut, len(entry), err)
		}
	}
}
