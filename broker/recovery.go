package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"

	"github.com/alpes/alpes/internal/pulsarwire"
	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

// A durable broker's DataDir holds broker.json (partitioned topics and
// namespace policies) and topics/<escaped topic name>/ per topic.

func (b *Broker) topicDir(name topicName) string {
	return filepath.Join(b.cfg.DataDir, "topics", url.QueryEscape(name.String()))
}

// openStore returns the store for a new topic.
func (b *Broker) openStore(name topicName) (topicStore, error) {
	if b.cfg.DataDir == "" {
		return memStore{}, nil
	}
	return openFileStore(b.storage(), b.topicDir(name))
}

// storage is where the broker's topic logs live: the operating system's
// files unless a test gave another layer.
func (b *Broker) storage() storageFS {
	if b.cfg.storage != nil {
		return b.cfg.storage
	}
	return osFS{}
}

// brokerMetadata is the content of broker.json.
type brokerMetadata struct {
	Partitioned        map[string]int  `json:"partitioned"`
	Namespaces         []string        `json:"namespaces,omitempty"`
	Deduplication      map[string]bool `json:"deduplication"`
	TopicDeduplication map[string]bool `json:"topicDeduplication"`
}

// saveMetadataLocked writes broker.json. Caller holds b.mu.
func (b *Broker) saveMetadataLocked() error {
	if b.cfg.DataDir == "" {
		return nil
	}
	namespaces := make([]string, 0, len(b.namespaces))
	for ns := range b.namespaces {
		namespaces = append(namespaces, ns)
	}
	sort.Strings(namespaces)
	b.policyMu.RLock()
	data, err := json.Marshal(brokerMetadata{
		Partitioned: b.partitioned, Namespaces: namespaces,
		Deduplication: b.dedupPolicy, TopicDeduplication: b.topicDedupPolicy,
	})
	b.policyMu.RUnlock()
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(b.cfg.DataDir, "broker.json"), data); err != nil {
		return fmt.Errorf("saving broker metadata: %w", err)
	}
	return nil
}

// recover loads a durable broker's metadata and topics.
func (b *Broker) recover() error {
	if b.cfg.DataDir == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Join(b.cfg.DataDir, "topics"), 0o755); err != nil {
		return err
	}
	data, err := os.ReadFile(filepath.Join(b.cfg.DataDir, "broker.json"))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return err
	default:
		var md brokerMetadata
		if err := json.Unmarshal(data, &md); err != nil {
			return fmt.Errorf("decoding broker.json: %w", err)
		}
		for k, v := range md.Partitioned {
			b.partitioned[k] = v
			if tn, err := parseTopicName(k); err == nil {
				b.namespaces[tn.namespaceName()] = true
			}
		}
		for _, ns := range md.Namespaces {
			b.namespaces[ns] = true
		}
		for k, v := range md.Deduplication {
			b.dedupPolicy[k] = v
		}
		for k, v := range md.TopicDeduplication {
			b.topicDedupPolicy[k] = v
		}
	}
	dirs, err := os.ReadDir(filepath.Join(b.cfg.DataDir, "topics"))
	if err != nil {
		return err
	}
	for _, d := range dirs {
		raw, err := url.QueryUnescape(d.Name())
		if err != nil || !d.IsDir() {
			continue
		}
		name, err := parseTopicName(raw)
		if err != nil {
			continue
		}
		t, err := b.recoverTopic(name)
		if err != nil {
			b.closeStores()
			return fmt.Errorf("recovering topic %s: %w", name, err)
		}
		b.topics[name.String()] = t
		b.namespaces[name.namespaceName()] = true
	}
	return nil
}

// recoverTopic rebuilds a topic from its directory: entries (index and
// deduplication state from the log), schemas and durable cursors.
func (b *Broker) recoverTopic(name topicName) (*topic, error) {
	store, err := openFileStore(b.storage(), b.topicDir(name))
	if err != nil {
		return nil, err
	}
	t := newTopic(b, name, store)
	var producer string // the last entry's producer name, which the next one likely shares
	err = store.recover(func(id int64, seq uint64, msg *pulsarwire.Message, offset int64) error {
		if want := t.firstID + int64(len(t.entries)); id != want {
			return fmt.Errorf("log holds entry %d where %d belongs", id, want)
		}
		md, err := msg.DecodeSummary()
		if err != nil {
			return fmt.Errorf("entry %d: %w", id, err)
		}
		producer = sharedString(md.ProducerName, producer)
		e := newEntry(msg, &md, producer)
		e.id, e.seq, e.offset, e.size = id, seq, offset, int64(len(msg.Raw))
		t.pushEntry(e)
		if !e.innerChunk && int64(seq) > t.dedupOf(e.producer) {
			t.dedup[e.producer] = int64(seq)
			t.pushed[e.producer] = int64(seq)
		}
		return nil
	}, func(at, size int64) {
		b.log.Warn("truncated the torn tail of a topic log: a write a crash cut short, never receipted",
			"topic", name.String(), "at_byte", at, "bytes", size)
	})
	if err != nil {
		store.close()
		return nil, err
	}
	t.readable = t.firstID + int64(len(t.entries))
	for _, e := range t.entries {
		t.tailBytes += e.size
	}
	t.pageOut()
	if t.schemas, err = store.loadSchemas(); err != nil {
		store.close()
		return nil, err
	}
	cursors, err := store.loadCursors()
	if err != nil {
		store.close()
		return nil, err
	}
	for _, c := range cursors {
		s := newSubscription(t, c.Name, wirev1.CommandSubscribe_SubType(c.Type), true, c.MarkDelete+1)
		for _, id := range c.Acked {
			s.acked[id] = struct{}{}
		}
		t.subs[s.name] = s
	}
	return t, nil
}
