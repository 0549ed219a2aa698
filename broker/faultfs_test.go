package broker

import (
	"io"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
)

// FaultFS is a storage layer for tests: topic logs live in memory, writes
// and syncs fail on demand, and PowerLoss forgets everything that was not
// made durable, the way a machine that loses power does. It models what
// Linux does after a failed fsync: the written pages are marked clean, so
// a later fsync does not write them; they are durable only if written
// again.
type FaultFS struct {
	mu         sync.Mutex
	files      map[string]*faultFile
	failSyncs  int           // the next this many log syncs fail
	failWrites int           // the next this many log writes fail
	syncErrors int           // log syncs that failed so far
	held       chan struct{} // while not nil, log syncs wait for it to close
}

func NewFaultFS() *FaultFS { return &FaultFS{files: map[string]*faultFile{}} }

// WithStorage returns cfg with its topic logs kept in fs.
func WithStorage(cfg Config, fs *FaultFS) Config {
	cfg.storage = fs
	return cfg
}

// FailSyncs makes the next n syncs of any log fail with EIO.
func (fs *FaultFS) FailSyncs(n int) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.failSyncs = n
}

// FailWrites makes the next n writes to any log fail with EIO after
// writing half of their bytes.
func (fs *FaultFS) FailWrites(n int) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.failWrites = n
}

// HoldSyncs makes log syncs wait until release is called: what is written
// meanwhile is pushed but not persisted.
func (fs *FaultFS) HoldSyncs() (release func()) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	held := make(chan struct{})
	fs.held = held
	return sync.OnceFunc(func() {
		fs.mu.Lock()
		fs.held = nil
		fs.mu.Unlock()
		close(held)
	})
}

// SyncErrors is how many syncs failed.
func (fs *FaultFS) SyncErrors() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.syncErrors
}

// PowerLoss forgets every write not covered by a successful sync, and every
// log whose directory entry was not synced after the log was created.
func (fs *FaultFS) PowerLoss() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for path, f := range fs.files {
		if !f.entrySynced || !f.dirSynced {
			delete(fs.files, path)
			continue
		}
		f.data = slices.Clone(f.durable)
		f.pending = nil
	}
}

func (fs *FaultFS) openLog(path string) (logFile, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f, ok := fs.files[path]
	if !ok {
		f = &faultFile{fs: fs}
		fs.files[path] = f
	}
	return f, nil
}

// syncDir makes the directory entries in dir durable: those of the logs
// in it, and those of the directories holding logs.
func (fs *FaultFS) syncDir(dir string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for path, f := range fs.files {
		switch dir {
		case filepath.Dir(path):
			f.entrySynced = true
		case filepath.Dir(filepath.Dir(path)):
			f.dirSynced = true
		}
	}
	return nil
}

// faultFile is one log: data is what reads see, durable what survives a
// power loss, pending the changes since the last sync, in order.
type faultFile struct {
	fs            *FaultFS
	data, durable []byte
	pending       []pendingChange
	// entrySynced and dirSynced: the log's entry in its directory, and the
	// directory's in its parent, are durable. A power loss forgets a log
	// without both.
	entrySynced, dirSynced bool
}

// pendingChange is a write (size < 0) or a truncation to size.
type pendingChange struct {
	off, n, size int64
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	n, err := len(p), error(nil)
	if f.fs.failWrites > 0 {
		f.fs.failWrites--
		n, err = len(p)/2, syscall.EIO
	}
	if end := off + int64(n); end > int64(len(f.data)) {
		f.data = append(f.data, make([]byte, end-int64(len(f.data)))...)
	}
	copy(f.data[off:], p[:n])
	f.pending = append(f.pending, pendingChange{off: off, n: int64(n), size: -1})
	return n, err
}

func (f *faultFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if off >= int64(len(f.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Sync makes the pending changes durable; when it fails they are dropped
// from what would be made durable, though reads still see them.
func (f *faultFile) Sync() error {
	f.fs.mu.Lock()
	if held := f.fs.held; held != nil {
		f.fs.mu.Unlock()
		<-held
		f.fs.mu.Lock()
	}
	defer f.fs.mu.Unlock()
	pending := f.pending
	f.pending = nil
	if f.fs.failSyncs > 0 {
		f.fs.failSyncs--
		f.fs.syncErrors++
		return syscall.EIO
	}
	for _, c := range pending {
		if c.size >= 0 {
			f.durable = f.durable[:min(int64(len(f.durable)), c.size)]
			continue
		}
		end := min(c.off+c.n, int64(len(f.data))) // bytes truncated since are cut below anyway
		if c.off >= end {
			continue
		}
		if end > int64(len(f.durable)) {
			f.durable = append(f.durable, make([]byte, end-int64(len(f.durable)))...)
		}
		copy(f.durable[c.off:end], f.data[c.off:end])
	}
	return nil
}

func (f *faultFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	f.data = f.data[:min(int64(len(f.data)), size)]
	f.pending = append(f.pending, pendingChange{size: size})
	return nil
}

func (f *faultFile) Size() (int64, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	return int64(len(f.data)), nil
}

func (f *faultFile) Close() error { return nil }
