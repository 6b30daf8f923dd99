package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// ErrDiskFull classifies a write refused because this director's disk is full: raft
// could not store the entry in its own log, so nothing was logged (the leader steps
// down, and another one may take the write).
var ErrDiskFull = errors.New("disk full")

// DiskFullError names the data dir whose disk is full and what the store said.
type DiskFullError struct {
	Dir string
	Err error
}

func (e *DiskFullError) Error() string {
	return fmt.Sprintf("this director's disk is full: raft cannot store its log in %s (%v); nothing was logged; free space there", e.Dir, e.Err)
}

func (e *DiskFullError) Unwrap() []error { return []error{ErrDiskFull, e.Err} }

// diskStore is the bolt store as raft writes to it, noting when a write fails for want
// of space: raft's log cache passes the store's error on as text, so the cause is kept
// here, until a write succeeds again.
type diskStore struct {
	*raftboltdb.BoltStore
	dir string
	log *slog.Logger

	mu        sync.Mutex
	fullErr   error     // the last write's error while the disk is full; nil once one succeeds
	announced bool      // the log said the disk is full, and has not said it has room yet
	loggedAt  time.Time // when it last said so
}

// diskLogEvery spaces the "disk full" lines: on a nearly full disk the writes that fit
// in bolt's free pages and those that do not alternate.
const diskLogEvery = 30 * time.Second

func (s *diskStore) note(err error) error {
	full := errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case full && !s.announced && time.Since(s.loggedAt) >= diskLogEvery:
		s.log.Error("the data dir's disk is full: raft cannot store its log; writes are refused until there is room", "data_dir", s.dir, "err", err)
		s.announced, s.loggedAt = true, time.Now()
	case err == nil && s.announced:
		s.log.Info("the data dir's disk has room again", "data_dir", s.dir)
		s.announced = false
	}
	switch {
	case full:
		s.fullErr = err
	case err == nil:
		s.fullErr = nil
	}
	return err
}

// full is the error of the writes that fail for want of space, nil while they do not.
func (s *diskStore) full() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fullErr == nil {
		return nil
	}
	return &DiskFullError{Dir: s.dir, Err: s.fullErr}
}

func (s *diskStore) StoreLog(l *raft.Log) error         { return s.note(s.BoltStore.StoreLog(l)) }
func (s *diskStore) StoreLogs(ls []*raft.Log) error     { return s.note(s.BoltStore.StoreLogs(ls)) }
func (s *diskStore) DeleteRange(lo, hi uint64) error    { return s.note(s.BoltStore.DeleteRange(lo, hi)) }
func (s *diskStore) Set(k, v []byte) error              { return s.note(s.BoltStore.Set(k, v)) }
func (s *diskStore) SetUint64(k []byte, v uint64) error { return s.note(s.BoltStore.SetUint64(k, v)) }
