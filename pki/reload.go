package pki

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Bounds of the file poll: often enough that a renewed certificate is in use within
// seconds, rarely enough that three stat calls are free. Reading happens only when a
// file's stat changed.
const (
	DefaultReloadInterval = 5 * time.Second
	MinReloadInterval     = 100 * time.Millisecond
	MaxReloadInterval     = 10 * time.Minute
)

// Reloader serves a node's current TLS material from files and reloads it when they
// change (Run polls their stat) or on demand (Reload: the daemon calls it on SIGHUP).
// A reload that fails keeps the material in use. Subscribers hear of every change: the
// Raft transport must then close its pooled streams, which otherwise keep the old
// certificates for as long as they live.
type Reloader struct {
	files    Files
	log      *slog.Logger
	now      func() time.Time
	interval time.Duration

	cur atomic.Pointer[Bundle]

	mu     sync.Mutex // serializes reloads, so subscribers hear changes in order
	stamps [3]fileStamp

	subsMu  sync.Mutex
	subs    map[int]func(*Bundle)
	nextSub int
}

// ReloaderOptions tune a Reloader; the zero value is fine.
type ReloaderOptions struct {
	Logger *slog.Logger
	// Interval between stat polls in Run; clamped to [MinReloadInterval,
	// MaxReloadInterval]; 0 is DefaultReloadInterval.
	Interval time.Duration
	// Now is the clock for validity checks; nil is time.Now.
	Now func() time.Time
}

// NewReloader loads the files once; it fails if they are not usable (a missing file, a
// key readable by others, an expired certificate …).
func NewReloader(files Files, opts ReloaderOptions) (*Reloader, error) {
	r := &Reloader{files: files, log: opts.Logger, now: opts.Now, interval: opts.Interval, subs: map[int]func(*Bundle){}}
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.now == nil {
		r.now = time.Now
	}
	switch {
	case r.interval == 0:
		r.interval = DefaultReloadInterval
	case r.interval < MinReloadInterval:
		r.interval = MinReloadInterval
	case r.interval > MaxReloadInterval:
		r.interval = MaxReloadInterval
	}
	r.stamps = r.stat()
	b, err := r.load()
	if err != nil {
		return nil, err
	}
	r.cur.Store(b)
	return r, nil
}

// Current is the material in use.
func (r *Reloader) Current() *Bundle { return r.cur.Load() }

// GetCertificate serves the current certificate (tls.Config.GetCertificate).
func (r *Reloader) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return serverCertificate(r)(hello)
}

// GetClientCertificate presents the current certificate (tls.Config.GetClientCertificate).
func (r *Reloader) GetClientCertificate(req *tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return clientCertificate(r)(req)
}

// Subscribe calls fn with the new material after every change, in order, from the
// goroutine that reloaded; fn must be quick and must not call Reload. The returned func
// unsubscribes.
func (r *Reloader) Subscribe(fn func(*Bundle)) (cancel func()) {
	r.subsMu.Lock()
	defer r.subsMu.Unlock()
	id := r.nextSub
	r.nextSub++
	r.subs[id] = fn
	return func() {
		r.subsMu.Lock()
		defer r.subsMu.Unlock()
		delete(r.subs, id)
	}
}

// Reload reads the files now. It reports whether the material changed (and subscribers
// were told); on error the material in use stays.
func (r *Reloader) Reload() (changed bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stamps = r.stat() // before reading: a write after this is seen by the next poll
	return r.reloadLocked()
}

func (r *Reloader) reloadLocked() (bool, error) {
	b, err := r.load()
	if err != nil {
		return false, err
	}
	old := r.cur.Load()
	if old.same(b) {
		return false, nil
	}
	r.cur.Store(b)
	r.log.Info("TLS material reloaded", "identity", b.Identity.String(), "serial", fmt.Sprintf("%x", b.Leaf().SerialNumber),
		"not_after", b.Leaf().NotAfter, "cas", len(b.CAs))
	r.subsMu.Lock()
	subs := make([]func(*Bundle), 0, len(r.subs))
	for _, fn := range r.subs {
		subs = append(subs, fn)
	}
	r.subsMu.Unlock()
	for _, fn := range subs {
		fn(b)
	}
	return true, nil
}

// Run polls the files' stat every interval until ctx ends, and reloads when one changed.
// A failed reload is logged and retried when a file changes again (a certificate
// written before its key fails once, then loads).
func (r *Reloader) Run(ctx context.Context) {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.poll()
		}
	}
}

// poll reloads if a file's stat changed since the last attempt.
func (r *Reloader) poll() (changed bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.stat()
	if st == r.stamps {
		return false, nil
	}
	r.stamps = st
	changed, err = r.reloadLocked()
	if err != nil {
		r.log.Error("TLS material not reloaded; still using the previous one", "error", err)
	}
	return changed, err
}

// load reads the files and refuses a certificate that has expired by the reloader's
// clock. A certificate not yet valid is only logged: that is this node's clock or the
// signer's being off, and the node's peers may well accept it.
func (r *Reloader) load() (*Bundle, error) {
	b, err := LoadBundle(r.files)
	if err != nil {
		return nil, err
	}
	now, leaf := r.now(), b.Leaf()
	if now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("load TLS material: %w: %s expired at %s; renew it (a new token and a join) or restore a valid one",
			ErrCertExpired, r.files.Cert, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(leaf.NotBefore) {
		r.log.Warn("this node's certificate is not valid yet by this node's clock: check NTP", "file", r.files.Cert,
			"not_before", leaf.NotBefore, "now", now)
	}
	return b, nil
}

// fileStamp is what a poll compares: a rewrite through a rename changes the inode's
// identity even within one mtime tick.
type fileStamp struct {
	mod  int64 // ns
	size int64
	ino  uint64
	ok   bool
}

func (r *Reloader) stat() [3]fileStamp {
	var st [3]fileStamp
	for i, path := range []string{r.files.Cert, r.files.Key, r.files.CA} {
		fi, err := os.Stat(path)
		if err != nil {
			continue
		}
		st[i] = fileStamp{mod: fi.ModTime().UnixNano(), size: fi.Size(), ino: inode(fi), ok: true}
	}
	return st
}
