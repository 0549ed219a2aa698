package broker

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"

	"google.golang.org/protobuf/proto"

	"github.com/alpes/alpes/internal/pulsarwire"
	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

// A topic's directory holds:
//
//	log          entries, one record each
//	schemas      schema versions, one record each
//	cursors.json durable subscriptions' cursors, replaced atomically
//
// A record is [u32 bodySize][u32 crc32c(body)][body]. An entry's body is
// [i64 id][u64 sequence id][u32 message checksum][message bytes]. Recovery
// stops at the first torn or corrupt record and truncates the log there:
// only a record that was fsynced, hence receipted, is guaranteed to be
// whole.

const (
	recordHeaderSize = 8
	entryHeaderSize  = 20
	maxRecordSize    = 1 << 30
)

// fileStore is the durable store of one topic.
type fileStore struct {
	dir string
	log logFile
	// size is the end of the last whole record appended, durable the end
	// of the last record a successful sync covered; both guarded by the
	// topic's lock.
	size, durableEnd int64
	dirty            atomic.Bool // appended since the last sync began
}

var _ topicStore = (*fileStore)(nil)

// openFileStore opens the store of the topic directory dir, creating it
// and its log when they do not exist. The directories are synced, so that
// a new log survives a power loss as surely as what is synced into it.
func openFileStore(fsys storageFS, dir string) (*fileStore, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating topic directory: %w", err)
	}
	f, err := fsys.openLog(filepath.Join(dir, "log"))
	if err != nil {
		return nil, fmt.Errorf("opening topic log: %w", err)
	}
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := fsys.syncDir(d); err != nil {
			f.Close()
			return nil, fmt.Errorf("syncing directory %s: %w", d, err)
		}
	}
	return &fileStore{dir: dir, log: f}, nil
}

func (s *fileStore) durable() bool { return true }

func appendRecord(dst, body []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(body)))
	dst = binary.BigEndian.AppendUint32(dst, pulsarwire.Checksum(body))
	return append(dst, body...)
}

func (s *fileStore) append(e *entry) error {
	body := make([]byte, 0, entryHeaderSize+len(e.msg.Raw))
	body = binary.BigEndian.AppendUint64(body, uint64(e.id))
	body = binary.BigEndian.AppendUint64(body, e.seq)
	body = binary.BigEndian.AppendUint32(body, e.msg.Checksum)
	body = append(body, e.msg.Raw...)
	rec := appendRecord(make([]byte, 0, recordHeaderSize+len(body)), body)
	if _, err := s.log.WriteAt(rec, s.size); err != nil {
		return fmt.Errorf("writing entry %d: %w", e.id, err)
	}
	e.offset = s.size + recordHeaderSize + entryHeaderSize
	s.size += int64(len(rec))
	s.dirty.Store(true)
	return nil
}

func (s *fileStore) read(e *entry) (*pulsarwire.Message, error) {
	buf := make([]byte, 4+e.size)
	if _, err := s.log.ReadAt(buf, e.offset-4); err != nil {
		return nil, fmt.Errorf("reading entry %d: %w", e.id, err)
	}
	return &pulsarwire.Message{HasChecksum: true, Checksum: binary.BigEndian.Uint32(buf), Raw: buf[4:]}, nil
}

func (s *fileStore) end() int64 { return s.size }

// sync is called without the topic's lock, concurrently with append. The
// dirty flag is cleared before the sync begins, so an append racing with it
// sets it again for the next one, and set again when the sync fails.
func (s *fileStore) sync() error {
	if !s.dirty.Swap(false) {
		return nil
	}
	if err := s.log.Sync(); err != nil {
		s.dirty.Store(true)
		return err
	}
	return nil
}

func (s *fileStore) synced(end int64) { s.durableEnd = max(s.durableEnd, end) }

func (s *fileStore) rollBack() error { return s.truncate(s.durableEnd) }

// truncate cuts the log back to size and syncs the cut. Caller holds the
// topic's lock.
func (s *fileStore) truncate(size int64) error {
	if err := s.log.Truncate(size); err != nil {
		return err
	}
	if err := s.log.Sync(); err != nil {
		return err
	}
	s.size, s.durableEnd = size, size
	s.dirty.Store(false)
	return nil
}

// errCorruptLog means a record in the middle of a topic's log is damaged:
// records follow it, so it is not a write cut short by a crash, and
// truncating there would discard entries that were receipted.
var errCorruptLog = errors.New("corrupt record in the middle of the topic log")

// recover replays the log, calling fn for each whole entry in order. A torn
// tail (a last record cut short or never completed by a crash) is truncated
// and logged through torn; a damaged record with records after it fails
// with errCorruptLog.
func (s *fileStore) recover(fn func(id int64, seq uint64, msg *pulsarwire.Message, offset int64) error, torn func(at, size int64)) error {
	end, err := s.log.Size()
	if err != nil {
		return err
	}
	r := bufio.NewReaderSize(io.NewSectionReader(s.log, 0, end), 1<<20)
	var off int64
	for {
		body, err := readRecord(r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err == nil && len(body) < entryHeaderSize {
			err = errors.New("entry record too short")
		}
		if err != nil {
			if !isTornTail(s.log, off, end) {
				return fmt.Errorf("%w: at byte %d of %d: %v", errCorruptLog, off, end, err)
			}
			if err := s.truncate(off); err != nil {
				return fmt.Errorf("truncating the torn tail of the log: %w", err)
			}
			torn(off, end-off)
			break
		}
		msg := &pulsarwire.Message{HasChecksum: true, Checksum: binary.BigEndian.Uint32(body[16:]), Raw: body[entryHeaderSize:]}
		id, seq := int64(binary.BigEndian.Uint64(body)), binary.BigEndian.Uint64(body[8:])
		if err := fn(id, seq, msg, off+recordHeaderSize+entryHeaderSize); err != nil {
			return err
		}
		off += int64(recordHeaderSize + len(body))
	}
	s.size, s.durableEnd = off, off
	return nil
}

// isTornTail reports whether the damaged record at off of a log of end
// bytes is what a crash leaves: a record whose claimed size reaches the end
// of the file (cut short, or its last bytes never written), or a tail of
// zeros (space the file system allocated before the data landed).
func isTornTail(f io.ReaderAt, off, end int64) bool {
	var hdr [recordHeaderSize]byte
	if n, _ := f.ReadAt(hdr[:], off); n < len(hdr) {
		return true
	}
	if off+recordHeaderSize+int64(binary.BigEndian.Uint32(hdr[:])) >= end {
		return true
	}
	buf := make([]byte, 64<<10)
	for at := off; at < end; at += int64(len(buf)) {
		n, _ := f.ReadAt(buf, at)
		for _, b := range buf[:n] {
			if b != 0 {
				return false
			}
		}
		if n < len(buf) {
			break
		}
	}
	return true
}

// readRecord reads one record; io.EOF means a clean end, any other error a
// torn or corrupt tail.
func readRecord(r *bufio.Reader) ([]byte, error) {
	var hdr [recordHeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err // io.EOF: clean end; io.ErrUnexpectedEOF: torn
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxRecordSize {
		return nil, errors.New("record size out of range")
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, io.ErrUnexpectedEOF
	}
	if pulsarwire.Checksum(body) != binary.BigEndian.Uint32(hdr[4:]) {
		return nil, errors.New("record checksum mismatch")
	}
	return body, nil
}

// saveSchema appends a schema version and syncs it: versions are rare and
// must not be handed out before they are durable.
func (s *fileStore) saveSchema(schema *wirev1.Schema) error {
	body, err := proto.Marshal(schema)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(s.dir, "schemas"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Write(appendRecord(nil, body)); err != nil {
		return err
	}
	return f.Sync()
}

func (s *fileStore) loadSchemas() ([]*wirev1.Schema, error) {
	f, err := os.Open(filepath.Join(s.dir, "schemas"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []*wirev1.Schema
	r := bufio.NewReader(f)
	for {
		body, err := readRecord(r)
		if err != nil {
			return out, nil // a torn last version was never handed out
		}
		var sc wirev1.Schema
		if err := proto.Unmarshal(body, &sc); err != nil {
			return nil, fmt.Errorf("decoding schema: %w", err)
		}
		out = append(out, &sc)
	}
}

func (s *fileStore) saveCursors(cursors []cursorState) error {
	data, err := json.Marshal(cursors)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(s.dir, "cursors.json"), data)
}

func (s *fileStore) loadCursors() ([]cursorState, error) {
	data, err := os.ReadFile(filepath.Join(s.dir, "cursors.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []cursorState
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("decoding cursors: %w", err)
	}
	return out, nil
}

func (s *fileStore) remove() error {
	s.log.Close()
	return os.RemoveAll(s.dir)
}

// storageFS is where a durable broker keeps its topic logs: the operating
// system's files, or in tests a layer that fails writes and syncs, or
// forgets what was not synced.
type storageFS interface {
	// openLog opens the log at path for reading and writing, creating it
	// when absent.
	openLog(path string) (logFile, error)
	// syncDir makes the entries of the directory at path durable.
	syncDir(path string) error
}

// logFile is what a store does with its log.
type logFile interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
	Truncate(size int64) error
	Size() (int64, error)
	Close() error
}

// osFS is the storageFS of the operating system.
type osFS struct{}

func (osFS) openLog(path string) (logFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	return osLog{f}, nil
}

func (osFS) syncDir(path string) error {
	d, err := os.Open(path)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

type osLog struct{ *os.File }

func (f osLog) Size() (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func (s *fileStore) close() error { return s.log.Close() }

// writeFileAtomic replaces path with data: write a temporary file, sync
// it, rename it over path, sync the directory.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
