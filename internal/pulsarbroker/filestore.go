package pulsarbroker

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
	dir   string
	log   *os.File
	size  int64       // end of the last whole record; guarded by the topic's lock
	dirty atomic.Bool // appended since the last sync
}

var _ topicStore = (*fileStore)(nil)

func openFileStore(dir string) (*fileStore, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating topic directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "log"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening topic log: %w", err)
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

// sync is safe to call without the topic's lock, concurrently with
// append: it covers at least every append that returned before it began.
func (s *fileStore) sync() error {
	if !s.dirty.Swap(false) {
		return nil
	}
	return s.log.Sync()
}

// recover replays the log, calling fn for each whole entry in order, and
// truncates whatever follows the last whole record.
func (s *fileStore) recover(fn func(id int64, seq uint64, msg *pulsarwire.Message, offset int64) error) error {
	if _, err := s.log.Seek(0, io.SeekStart); err != nil {
		return err
	}
	r := bufio.NewReaderSize(s.log, 1<<20)
	var off int64
	for {
		body, err := readRecord(r)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				if terr := s.log.Truncate(off); terr != nil {
					return fmt.Errorf("truncating torn log tail: %w", terr)
				}
			}
			break
		}
		if len(body) < entryHeaderSize {
			return fmt.Errorf("entry record at %d too short", off)
		}
		msg := &pulsarwire.Message{HasChecksum: true, Checksum: binary.BigEndian.Uint32(body[16:]), Raw: body[entryHeaderSize:]}
		id, seq := int64(binary.BigEndian.Uint64(body)), binary.BigEndian.Uint64(body[8:])
		if err := fn(id, seq, msg, off+recordHeaderSize+entryHeaderSize); err != nil {
			return err
		}
		off += int64(recordHeaderSize + len(body))
	}
	s.size = off
	return nil
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
