package ipvs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
)

// ownershipFile is the name of the file, in the directory the caller gives, that lists
// the services this director created. The kernel has no field to tag a service with, and
// a service removed from the cluster while the director was down must still be removed
// when it comes back, so the list lives on disk beside the Raft data.
const ownershipFile = "ipvs-owned.json"

// ownership is the persisted set of services raftlvs created (or adopted). It is written
// before a service is created and pruned after it is deleted, so a crash between the two
// leaves at worst a key for a service that no longer exists, which the next pass prunes.
type ownership struct {
	path  string
	keys  map[ServiceKey]struct{}
	dirty bool
}

type ownershipDoc struct {
	Version  int          `json:"version"`
	Services []ServiceKey `json:"services"`
}

func loadOwnership(dir string) (*ownership, error) {
	o := &ownership{path: filepath.Join(dir, ownershipFile), keys: map[ServiceKey]struct{}{}}
	b, err := os.ReadFile(o.path)
	if errors.Is(err, fs.ErrNotExist) {
		return o, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read owned IPVS services: %w", err)
	}
	var doc ownershipDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("read owned IPVS services %s: %w", o.path, err)
	}
	if doc.Version != 1 {
		return nil, fmt.Errorf("read owned IPVS services %s: unknown version %d", o.path, doc.Version)
	}
	for _, k := range doc.Services {
		o.keys[k] = struct{}{}
	}
	return o, nil
}

func (o *ownership) owns(k ServiceKey) bool {
	_, ok := o.keys[k]
	return ok
}

func (o *ownership) add(k ServiceKey) {
	if !o.owns(k) {
		o.keys[k] = struct{}{}
		o.dirty = true
	}
}

func (o *ownership) remove(k ServiceKey) {
	if o.owns(k) {
		delete(o.keys, k)
		o.dirty = true
	}
}

// save writes the set if it changed: a temporary file, fsync, rename, so a crash leaves
// the old list or the new one, never half of one.
func (o *ownership) save() error {
	if !o.dirty {
		return nil
	}
	doc := ownershipDoc{Version: 1, Services: slices.SortedFunc(maps.Keys(o.keys), ServiceKey.Compare)}
	b, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("encode owned IPVS services: %w", err)
	}
	if err := writeFileAtomic(o.path, b); err != nil {
		return fmt.Errorf("save owned IPVS services: %w", err)
	}
	o.dirty = false
	return nil
}

func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	// The rename is durable only once the directory is synced.
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
