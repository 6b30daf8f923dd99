package realserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
)

// journal is what the Configurator changed on the host, persisted so that an agent that
// crashed and restarted still knows the operator's original values and which addresses
// and devices are its own. Each change is recorded (and persisted) before it is made: a
// crash in between leaves a record of a change that did not happen, which undoing
// tolerates, rather than a change without a record, which would lose an original value.
type journal struct {
	Version int            `json:"version"`
	Sysctls []sysctlChange `json:"sysctls,omitempty"` // in the order first changed
	Addrs   []addrChange   `json:"addrs,omitempty"`   // in the order added
	Routes  []routeChange  `json:"routes,omitempty"`
	IPIP    IPIPChange     `json:"ipip,omitempty"` // what the agent did to tunl0
}

const journalVersion = 1

type sysctlChange struct {
	Path     string `json:"path"`
	Original int    `json:"original"` // the value before the agent first changed it
	Value    int    `json:"value"`    // the value the agent wrote
}

type routeChange struct {
	Route    Route  `json:"route"`              // the route the agent installed
	Original *Route `json:"original,omitempty"` // the route it replaced, if any
}

type addrChange struct {
	Link    string  `json:"link"`
	Address Address `json:"address"`
}

func (j *journal) empty() bool {
	return len(j.Sysctls) == 0 && len(j.Addrs) == 0 && len(j.Routes) == 0 && j.IPIP == IPIPUnchanged
}

func (j *journal) sysctl(path string) *sysctlChange {
	for i := range j.Sysctls {
		if j.Sysctls[i].Path == path {
			return &j.Sysctls[i]
		}
	}
	return nil
}

func (j *journal) route(dst netip.Prefix) *routeChange {
	for i := range j.Routes {
		if j.Routes[i].Route.Dst == dst {
			return &j.Routes[i]
		}
	}
	return nil
}

func (j *journal) hasAddr(link string, a Address) bool {
	for _, r := range j.Addrs {
		if r.Link == link && r.Address.Prefix == a.Prefix {
			return true
		}
	}
	return false
}

// loadJournal reads the state file; a missing file is an empty journal.
func loadJournal(path string) (journal, error) {
	var j journal
	if path == "" {
		return j, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return j, nil
	}
	if err != nil {
		return j, fmt.Errorf("read state file: %w", err)
	}
	if err := json.Unmarshal(b, &j); err != nil {
		return j, fmt.Errorf("decode state file %s: %w", path, err)
	}
	if j.Version != journalVersion {
		return j, fmt.Errorf("state file %s has version %d, this agent reads %d", path, j.Version, journalVersion)
	}
	return j, nil
}

// saveJournal replaces the state file atomically (temp file, fsync, rename, fsync of the
// directory), and removes it once the journal is empty: a clean exit leaves nothing behind.
func saveJournal(path string, j *journal) error {
	if path == "" {
		return nil
	}
	if j.empty() {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove state file: %w", err)
		}
		return nil
	}
	j.Version = journalVersion
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write state file: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write state file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync state file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write state file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replace state file: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync state directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync state directory: %w", err)
	}
	return nil
}
