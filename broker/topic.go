package broker

import (
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/alpes/alpes/internal/pulsarwire"
	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

// ledgerID is the ledger id of every message id the broker hands out. A
// topic is one log; its entry ids are the positions in that log.
const ledgerID = 1

// entry is one stored SEND: a single message or a batch, kept as the bytes
// the producer sent.
type entry struct {
	id          int64
	msg         *pulsarwire.Message // nil when paged out to disk
	offset      int64               // position of the record in the topic's log file
	size        int64               // length of msg.Raw
	seq         uint64              // deduplication sequence id
	producer    string              // producer name, from the metadata
	publishTime uint64              // milliseconds since the epoch, from the metadata
	numMessages int32               // messages in the entry (1 unless a batch)
	batched     bool                // num_messages_in_batch was set: the client unpacks it
	keyHash     uint32              // hash of the entry's sticky key, for Key_Shared
	innerChunk  bool                // a chunk other than the last: no deduplication
	chunked     bool                // a chunk of a chunked message
	deliverAt   int64               // delayed delivery time in Unix milliseconds, or 0
	// endBytes is the storedBytes of the entries held, up to and
	// including this one, from an arbitrary origin: the difference of two
	// entries' endBytes is the size of the log between them.
	endBytes int64
}

// storedBytes is the entry's size as Pulsar's stats count it: the bytes
// kept, with the checksum block every stored entry has.
func (e *entry) storedBytes() int64 { return e.size + pulsarwire.ChecksumBlockLen }

// pushEntry adds e, whose id is set, at the end of the entries held.
// Caller holds t.mu.
func (t *topic) pushEntry(e *entry) {
	e.endBytes = e.storedBytes()
	if n := len(t.entries); n > 0 {
		e.endBytes += t.entries[n-1].endBytes
	}
	t.entries = append(t.entries, e)
	t.storageSize += e.storedBytes()
}

// topic is one topic (or one partition of a partitioned topic). mu guards
// every field below it and the state of the topic's producers,
// subscriptions and consumers.
type topic struct {
	b         *Broker
	name      topicName
	partition int32 // index of this partition, or -1
	store     topicStore

	mu sync.Mutex
	// entries[i].id == firstID + i. Entries at or after readable are
	// written but not yet durable: invisible to consumers until they are.
	entries   []*entry
	firstID   int64
	readable  int64
	producers map[string]*producer     // by producer name
	subs      map[string]*subscription // by subscription name
	// Deduplication state per producer name: the highest sequence id
	// persisted, and the highest pushed (written, maybe not yet durable).
	dedup, pushed map[string]int64
	// inactive: when each producer name with deduplication state lost its
	// last producer (see purgeInactiveProducers).
	inactive     map[string]time.Time
	schemas      []*wirev1.Schema // schema versions; the version is the index
	deleted      bool
	quiesced     bool  // consumers are being disconnected: dispatch nothing
	cursorsDirty bool  // a durable subscription changed since the last save
	pagedOut     int64 // entries below this id have their bytes on disk only
	tailBytes    int64 // bytes of readable entries still in memory

	storageSize int64 // bytes of the stored entries (entry.storedBytes)
	// msgIn and bytesIn count every message a producer sent that passed
	// the checksum, duplicates and refused ones included, as Pulsar's
	// msgInCounter does; msgOut and bytesOut what was dispatched.
	msgIn, bytesIn, msgOut, bytesOut meter
	chunkPublished                   bool // a chunked message was stored

	// Exclusive access (see grantAccess): the name of the producer that
	// holds the topic, the WaitForExclusive producers queued for it, and
	// the topic's epoch, which each new holder advances (-1 before the
	// first).
	exclusive string
	waiting   []*producer
	epoch     int64

	// gen counts the log's rollbacks (see rollBack); failed is set when a
	// rollback itself failed, and the topic refuses writes until the broker
	// restarts and recovers it from disk.
	gen    uint64
	failed error
}

func newTopic(b *Broker, name topicName, store topicStore) *topic {
	return &topic{
		b:         b,
		name:      name,
		partition: int32(name.partition()),
		store:     store,
		producers: make(map[string]*producer),
		subs:      make(map[string]*subscription),
		dedup:     make(map[string]int64),
		pushed:    make(map[string]int64),
		inactive:  make(map[string]time.Time),
		epoch:     -1,
	}
}

// nextID returns the id after the last readable entry. Caller holds t.mu.
func (t *topic) nextID() int64 { return t.readable }

// lastID returns the id of the newest readable entry, or -1. Caller holds
// t.mu.
func (t *topic) lastID() int64 { return t.readable - 1 }

// entry returns the entry with that id, or nil. Caller holds t.mu.
func (t *topic) entry(id int64) *entry {
	if id < t.firstID || id >= t.firstID+int64(len(t.entries)) {
		return nil
	}
	return t.entries[id-t.firstID]
}

// message returns the bytes of e, from memory or from disk. Caller holds
// t.mu.
func (t *topic) message(e *entry) (*pulsarwire.Message, error) {
	if e.msg != nil {
		return e.msg, nil
	}
	return t.store.read(e)
}

// append writes e to the store and gives it its id; it becomes readable
// once the store has made it durable (see madeDurable). Caller holds t.mu.
func (t *topic) append(e *entry) error {
	e.id = t.firstID + int64(len(t.entries))
	e.size = int64(len(e.msg.Raw))
	if err := t.store.append(e); err != nil {
		return err
	}
	t.pushEntry(e)
	if !e.innerChunk {
		t.pushed[e.producer] = int64(e.seq)
	}
	if e.chunked {
		t.chunkPublished = true
	}
	return nil
}

// rollBack forgets, after a failed sync, every entry not yet durable: the
// log is cut back to its last durable end (and the cut synced), the
// entries and the producers' pushed sequence ids go back to what is
// durable, the generation advances so that their receipts are never sent,
// and every producer's connection is closed so that its client sends them
// again. Consumers never saw them: only durable entries are readable.
// Caller holds t.mu.
func (t *topic) rollBack() {
	keep := int(t.readable - t.firstID)
	for _, e := range t.entries[keep:] {
		t.storageSize -= e.storedBytes()
	}
	clear(t.entries[keep:])
	t.entries = t.entries[:keep]
	t.pushed = maps.Clone(t.dedup)
	t.gen++
	for _, p := range t.producers {
		p.conn.close()
	}
	if err := t.store.rollBack(); err != nil {
		t.failed = fmt.Errorf("rolling the log back after a failed sync: %w", err)
		t.b.log.Error("topic refuses writes until the broker restarts", "topic", t.name.String(), "err", t.failed)
	}
}

// madeDurable makes every entry up to and including id readable and
// records its sequence id as persisted; dispatchAll then hands the new
// entries to the subscriptions. Caller holds t.mu.
func (t *topic) madeDurable(id int64) {
	if id < t.readable {
		return
	}
	for i := t.readable; i <= id; i++ {
		if e := t.entry(i); e != nil {
			if !e.innerChunk && int64(e.seq) > t.dedupOf(e.producer) {
				t.dedup[e.producer] = int64(e.seq)
			}
			if t.store.durable() {
				t.tailBytes += e.size
			}
		}
	}
	t.readable = id + 1
}

// dispatchAll lets every subscription deliver what it can, then pages out
// what consumers no longer need in memory. Caller holds t.mu.
func (t *topic) dispatchAll() {
	for _, s := range t.subs {
		s.dispatch()
	}
	if t.store.durable() {
		t.pageOut()
	}
}

// A durable topic keeps the bytes of its newest entries in memory, where
// consumers at the tail read them, up to these limits; older entries are
// read back from disk.
const (
	tailEntriesInMemory = 256
	tailBytesInMemory   = 8 << 20
)

// pageOut drops the bytes of readable entries beyond the in-memory tail.
// Caller holds t.mu.
func (t *topic) pageOut() {
	for t.pagedOut < t.readable &&
		(t.readable-t.pagedOut > tailEntriesInMemory || t.tailBytes > tailBytesInMemory) {
		if e := t.entry(t.pagedOut); e != nil && e.msg != nil {
			e.msg = nil
			t.tailBytes -= e.size
		}
		t.pagedOut++
	}
}

func (t *topic) dedupOf(producer string) int64 {
	if v, ok := t.dedup[producer]; ok {
		return v
	}
	return -1
}

// firstIDAtOrAfter returns the id of the first entry published at or after
// publishTime (milliseconds), or nextID when there is none. Caller holds
// t.mu.
func (t *topic) firstIDAtOrAfter(publishTime uint64) int64 {
	for _, e := range t.entries {
		if e.id >= t.readable {
			break
		}
		if e.publishTime >= publishTime {
			return e.id
		}
	}
	return t.nextID()
}

// messageID builds a message id for entry id of this topic.
func (t *topic) messageID(id int64) *wirev1.MessageIdData {
	md := &wirev1.MessageIdData{LedgerId: protoUint64(ledgerID), EntryId: protoUint64(uint64(id))}
	if t.partition >= 0 {
		md.Partition = protoInt32(t.partition)
	}
	return md
}

func protoUint64(v uint64) *uint64 { return &v }
func protoInt32(v int32) *int32    { return &v }
