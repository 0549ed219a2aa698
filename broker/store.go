package broker

import (
	"errors"

	"github.com/alpes/alpes/internal/pulsarwire"
	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

// topicStore keeps one topic's data. The memory store keeps nothing
// beyond the topic's own structures; the file store (DataDir) writes
// entries, schemas and cursors to disk. A store is used under its topic's
// lock, except sync and saveCursors, which only the commit loop calls,
// without it.
type topicStore interface {
	// durable reports whether the store survives a restart; durable
	// stores also page entries' bytes out of memory.
	durable() bool
	// append writes e; it need not be durable before sync returns.
	append(e *entry) error
	// read returns the bytes of an entry paged out of memory.
	read(e *entry) (*pulsarwire.Message, error)
	// end is where the next append goes: sync covers up to it.
	end() int64
	// sync makes durable every entry appended before end() was read. On
	// an error nothing since the last successful sync may be assumed on
	// disk, and no later sync can make it so.
	sync() error
	// synced records that the log is durable up to end.
	synced(end int64)
	// rollBack truncates the log to where it was last durable, after a
	// failed sync, and makes the cut durable.
	rollBack() error
	saveSchema(s *wirev1.Schema) error
	saveCursors(cursors []cursorState) error
	// remove deletes the topic's data; close releases the store.
	remove() error
	close() error
}

// cursorState is what survives a restart of a durable subscription.
type cursorState struct {
	Name       string  `json:"name"`
	Type       int32   `json:"type"`
	MarkDelete int64   `json:"markDelete"`
	Acked      []int64 `json:"acked,omitempty"`
}

// memStore is the store of a broker without DataDir.
type memStore struct{}

var _ topicStore = memStore{}

func (memStore) durable() bool                   { return false }
func (memStore) append(*entry) error             { return nil }
func (memStore) sync() error                     { return nil }
func (memStore) end() int64                      { return 0 }
func (memStore) synced(int64)                    {}
func (memStore) rollBack() error                 { return nil }
func (memStore) saveSchema(*wirev1.Schema) error { return nil }
func (memStore) saveCursors([]cursorState) error { return nil }
func (memStore) remove() error                   { return nil }
func (memStore) close() error                    { return nil }

func (memStore) read(*entry) (*pulsarwire.Message, error) {
	return nil, errors.New("in-memory entry without bytes")
}
