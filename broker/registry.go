package broker

import (
	"errors"
	"fmt"
	"sort"

	"google.golang.org/protobuf/proto"

	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

// Errors of the topic registry.
var (
	errTopicNotFound    = errors.New("topic not found")
	errBrokerClosed     = errors.New("broker is closing")
	errPartitionedTopic = errors.New("topic is partitioned: use its partitions")
	errTopicExists      = errors.New("topic already exists")
	errTopicBusy        = errors.New("topic has connected producers or consumers")
)

// partitions returns the number of partitions of a partitioned topic, or 0
// for a non-partitioned or unknown one (the answer real Pulsar gives, so the
// client then auto-creates a non-partitioned topic).
func (b *Broker) partitions(name topicName) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.partitioned[name.String()]
}

// topic returns the named topic, creating it when create is set (topic
// auto-creation, as Pulsar does by default for non-partitioned topics).
func (b *Broker) topic(name topicName, create bool) (*topic, error) {
	key := name.String()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, errBrokerClosed
	}
	if t, ok := b.topics[key]; ok {
		return t, nil
	}
	if _, ok := b.partitioned[key]; ok {
		return nil, errPartitionedTopic
	}
	if base := name.base(); base != name {
		if n, ok := b.partitioned[base.String()]; ok && name.partition() >= n {
			return nil, fmt.Errorf("%w: partition %d of a topic with %d partitions", errTopicNotFound, name.partition(), n)
		}
	}
	if !create {
		return nil, errTopicNotFound
	}
	store, err := b.openStore(name)
	if err != nil {
		return nil, err
	}
	t := newTopic(b, name, store)
	b.topics[key] = t
	b.namespaces[name.namespaceName()] = true // implicitly, see admin_namespaces.go
	return t, nil
}

// deduplicationEnabled reports whether deduplication is on for a topic:
// the policy of the topic (of its partitioned topic, for a partition) if
// it has one, else its namespace's, else the broker's default.
func (b *Broker) deduplicationEnabled(name topicName) bool {
	// Every SEND asks: the keys are spelled in buf, not allocated.
	var buf [nameScratch]byte
	b.policyMu.RLock()
	defer b.policyMu.RUnlock()
	if on, ok := b.topicDedupPolicy[string(name.base().appendTo(buf[:0]))]; ok {
		return on
	}
	if on, ok := b.dedupPolicy[string(name.appendNamespace(buf[:0]))]; ok {
		return on
	}
	return b.cfg.Deduplication
}

// topicExists reports whether the named topic exists: a loaded topic, a
// partitioned topic, or one of its partitions.
func (b *Broker) topicExists(name topicName) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.topics[name.String()]; ok {
		return true
	}
	if _, ok := b.partitioned[name.String()]; ok {
		return true
	}
	n, ok := b.partitioned[name.base().String()]
	return ok && name.partition() >= 0 && name.partition() < n
}

// existingTopic returns the named topic for the admin API, which sees
// what exists in Pulsar: a partition of a partitioned topic exists from
// the partitioned topic's creation (Pulsar creates them eagerly), so it is
// created here on first mention; any other topic must exist already.
func (b *Broker) existingTopic(name topicName) (*topic, error) {
	return b.topic(name, name.partition() >= 0 && b.topicExists(name))
}

// createTopic creates a non-partitioned topic. A partitioned topic, or a
// partition of one, already exists.
func (b *Broker) createTopic(name topicName) error {
	if b.topicExists(name) {
		return fmt.Errorf("%w: %s", errTopicExists, name)
	}
	_, err := b.topic(name, true)
	return err
}

// deleteTopic deletes a topic with its data and subscriptions. Without
// force it refuses while producers or consumers are connected; with force
// it disconnects them (clients reconnect, recreating an empty topic).
func (b *Broker) deleteTopic(name topicName, force bool) error {
	b.mu.Lock()
	t, ok := b.topics[name.String()]
	if !ok {
		b.mu.Unlock()
		return fmt.Errorf("%w: %s", errTopicNotFound, name)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !force && t.connectedLocked() {
		b.mu.Unlock()
		return fmt.Errorf("%w: %s", errTopicBusy, name)
	}
	delete(b.topics, name.String())
	if name.base() == name {
		b.forgetTopicPolicyLocked(name)
	}
	b.mu.Unlock()
	t.closeLocked()
	if err := t.store.remove(); err != nil {
		b.log.Error("removing topic data", "topic", name.String(), "err", err)
	}
	return nil
}

// connectedLocked reports whether producers or consumers are attached.
// Caller holds t.mu.
func (t *topic) connectedLocked() bool {
	if len(t.producers) > 0 {
		return true
	}
	for _, s := range t.subs {
		if len(s.consumers) > 0 {
			return true
		}
	}
	return false
}

// closeLocked marks t deleted and disconnects its producers and consumers.
// Caller holds t.mu.
func (t *topic) closeLocked() {
	t.deleted = true
	t.disconnectAllLocked()
	t.subs = map[string]*subscription{}
}

// unloadLocked disconnects every producer and consumer (CLOSE_PRODUCER,
// CLOSE_CONSUMER), as an unload does; the clients reconnect. What clients
// observe afterwards matches Pulsar reloading the topic from storage:
// entries, durable cursors (each consumer's unacknowledged messages
// return to the subscription), schemas and deduplication state stay; a
// non-durable subscription ends and its reader re-subscribes from where
// it was. Caller holds t.mu.
func (t *topic) unloadLocked() {
	t.disconnectAllLocked()
}

// disconnectAllLocked detaches every producer and consumer and tells
// their clients. Caller holds t.mu.
func (t *topic) disconnectAllLocked() {
	// No dispatching to the consumers still attached while the others go.
	t.quiesced = true
	defer func() { t.quiesced = false }()
	for name, p := range t.producers {
		delete(t.producers, name)
		p.conn.mu.Lock()
		if p.conn.producers[p.id] == p {
			delete(p.conn.producers, p.id)
		}
		p.conn.mu.Unlock()
		p.conn.send(&wirev1.BaseCommand{
			Type:          wirev1.BaseCommand_CLOSE_PRODUCER.Enum(),
			CloseProducer: &wirev1.CommandCloseProducer{ProducerId: proto.Uint64(p.id), RequestId: proto.Uint64(0)},
		}, nil)
	}
	for _, s := range t.subs {
		for _, c := range append([]*consumer(nil), s.consumers...) {
			t.detachLocked(c)
			c.conn.send(closeConsumerCommand(c.id), nil)
		}
	}
}

// forgetTopicPolicyLocked drops a deleted topic's policies, as Pulsar
// does, so that a topic created later under the same name starts without
// them. Caller holds b.mu.
func (b *Broker) forgetTopicPolicyLocked(name topicName) {
	b.policyMu.Lock()
	_, had := b.topicDedupPolicy[name.String()]
	delete(b.topicDedupPolicy, name.String())
	b.policyMu.Unlock()
	if had {
		if err := b.saveMetadataLocked(); err != nil {
			b.log.Error("saving broker metadata", "err", err)
		}
	}
}

// setPartitions creates a partitioned topic with n partitions or, with
// update, raises the number of partitions of an existing one. Its errors
// carry Pulsar's statuses: n < 1 at creation is errNotAcceptable (406), an
// existing topic errTopicExists (409); an update of a topic that is not
// partitioned is errConflict (409), one that would lower the count
// errUnprocessable (422).
func (b *Broker) setPartitions(name topicName, n int, update bool) error {
	if !update && n < 1 {
		return fmt.Errorf("%w: the number of partitions must be more than 0", errNotAcceptable)
	}
	key := name.String()
	b.mu.Lock()
	defer b.mu.Unlock()
	cur, exists := b.partitioned[key]
	switch {
	case update && !exists:
		return fmt.Errorf("%w: %s is not a partitioned topic", errConflict, name)
	case update && n < cur:
		return fmt.Errorf("%w: %d partitions can't be fewer than the current %d", errUnprocessable, n, cur)
	case !update && exists:
		return fmt.Errorf("%w: %s", errTopicExists, name)
	}
	if _, plain := b.topics[key]; plain {
		return fmt.Errorf("%w: %s exists as a non-partitioned topic", errTopicExists, name)
	}
	b.partitioned[key] = n
	b.namespaces[name.namespaceName()] = true
	return b.saveMetadataLocked()
}

// deletePartitioned deletes a partitioned topic and its partitions.
func (b *Broker) deletePartitioned(name topicName, force bool) error {
	n := b.partitions(name)
	if n == 0 {
		return fmt.Errorf("%w: %s is not a partitioned topic", errTopicNotFound, name)
	}
	for i := range n {
		if err := b.deleteTopic(name.partitionName(i), force); err != nil && !errors.Is(err, errTopicNotFound) {
			return err
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.partitioned, name.String())
	b.forgetTopicPolicyLocked(name)
	return b.saveMetadataLocked()
}

func sortedStrings(s []string) []string {
	sort.Strings(s)
	return s
}

// topicNames returns the names of the existing topics of a namespace
// ("tenant/ns"), partitions of partitioned topics included.
func (b *Broker) topicNames(namespace string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.topicNamesLocked(namespace)
}

// topicNamesLocked is topicNames with b.mu held.
func (b *Broker) topicNamesLocked(namespace string) []string {
	seen := make(map[string]bool)
	var names []string
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	for name, t := range b.topics {
		if t.name.namespaceName() == namespace {
			add(name)
		}
	}
	for base, n := range b.partitioned {
		tn, err := parseTopicName(base)
		if err != nil || tn.namespaceName() != namespace {
			continue
		}
		for i := range n {
			add(tn.partitionName(i).String())
		}
	}
	return names
}
