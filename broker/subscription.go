package broker

import (
	"slices"
	"sort"
	"time"

	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

// subscription is a named cursor on a topic plus the consumers attached to
// it. All its fields, and its consumers', are guarded by topic.mu.
//
// The cursor: every entry id at or below markDelete is acknowledged, and so
// are the ids in acked; readPos is the next entry never yet dispatched;
// pending maps each dispatched, unacknowledged entry to the consumer that
// holds it; replay lists (ascending) entries to dispatch again, before any
// new one.
type subscription struct {
	topic   *topic
	name    string
	subType wirev1.CommandSubscribe_SubType
	durable bool

	consumers []*consumer // in order of arrival

	markDelete   int64
	acked        map[int64]struct{}
	readPos      int64
	pending      map[int64]*consumer
	replay       []int64
	redeliveries map[int64]uint32
	unacked      int64 // messages in pending entries

	nextShared int                 // round-robin position for Shared
	active     *consumer           // Exclusive/Failover: the consumer that receives
	keys       *keyShared          // Key_Shared: hash -> consumer; nil without consumers
	keyHolds   map[uint32]*keyHold // Key_Shared: hashes with entries pending

	delayed    []delayedEntry // Shared, Key_Shared: entries not yet due, by time
	delayTimer *time.Timer

	// keepWhenEmpty keeps a non-durable subscription alive while its
	// consumers reconnect after a seek.
	keepWhenEmpty    bool
	msgOut, bytesOut meter
}

// keyHold records that a consumer holds unacknowledged entries of a
// Key_Shared hash; no other consumer may receive that hash until they are
// acknowledged, or given back by a nack or the consumer leaving.
type keyHold struct {
	consumer *consumer
	count    int
}

func newSubscription(t *topic, name string, subType wirev1.CommandSubscribe_SubType, durable bool, start int64) *subscription {
	return &subscription{
		topic:        t,
		name:         name,
		subType:      subType,
		durable:      durable,
		markDelete:   start - 1,
		readPos:      start,
		acked:        make(map[int64]struct{}),
		pending:      make(map[int64]*consumer),
		redeliveries: make(map[int64]uint32),
		keyHolds:     make(map[uint32]*keyHold),
	}
}

func (s *subscription) isAcked(id int64) bool {
	if id <= s.markDelete {
		return true
	}
	_, ok := s.acked[id]
	return ok
}

// backlog returns the number of entries not yet acknowledged.
func (s *subscription) backlog() int64 {
	return s.topic.lastID() - s.markDelete - int64(len(s.acked))
}

// ackIndividual acknowledges one entry.
func (s *subscription) ackIndividual(id int64) {
	if s.isAcked(id) || id >= s.topic.nextID() {
		return
	}
	s.release(id)
	s.removeReplay(id)
	delete(s.redeliveries, id)
	s.acked[id] = struct{}{}
	s.topic.cursorsDirty = true
	for {
		if _, ok := s.acked[s.markDelete+1]; !ok {
			break
		}
		delete(s.acked, s.markDelete+1)
		s.markDelete++
	}
}

// ackCumulative acknowledges every entry up to and including id.
func (s *subscription) ackCumulative(id int64) {
	id = min(id, s.topic.lastID())
	if id <= s.markDelete {
		return
	}
	for pid := range s.pending {
		if pid <= id {
			s.release(pid)
		}
	}
	s.replay = slices.DeleteFunc(s.replay, func(r int64) bool { return r <= id })
	for a := range s.acked {
		if a <= id {
			delete(s.acked, a)
		}
	}
	for r := range s.redeliveries {
		if r <= id {
			delete(s.redeliveries, r)
		}
	}
	s.markDelete = id
	s.topic.cursorsDirty = true
	for {
		if _, ok := s.acked[s.markDelete+1]; !ok {
			break
		}
		delete(s.acked, s.markDelete+1)
		s.markDelete++
	}
	if s.readPos <= s.markDelete {
		s.readPos = s.markDelete + 1
	}
}

// release forgets that an entry is pending on its consumer.
func (s *subscription) release(id int64) {
	c, ok := s.pending[id]
	if !ok {
		return
	}
	delete(s.pending, id)
	if e := s.topic.entry(id); e != nil {
		c.unacked -= int64(e.numMessages)
		s.unacked -= int64(e.numMessages)
		s.releaseKeyHold(c, e)
	}
}

// stickyHash returns e's hash on the subscription's Key_Shared selector,
// which must be set.
func (s *subscription) stickyHash(e *entry) uint32 { return s.keys.hash(e.keyHash) }

// takeKeyHold records that c holds e, of a Key_Shared subscription.
func (s *subscription) takeKeyHold(c *consumer, e *entry) {
	hash := s.stickyHash(e)
	h := s.keyHolds[hash]
	if h == nil {
		h = &keyHold{consumer: c}
		s.keyHolds[hash] = h
	}
	h.count++
}

// releaseKeyHold records that c no longer holds e.
func (s *subscription) releaseKeyHold(c *consumer, e *entry) {
	if s.keys == nil {
		return
	}
	hash := s.stickyHash(e)
	if h := s.keyHolds[hash]; h != nil && h.consumer == c {
		if h.count--; h.count <= 0 {
			delete(s.keyHolds, hash)
		}
	}
}

// requeue takes a pending entry back from its consumer to be dispatched
// again, counting a redelivery when countIt is set.
func (s *subscription) requeue(id int64, countIt bool) {
	if _, ok := s.pending[id]; !ok {
		return
	}
	s.release(id)
	if countIt {
		s.redeliveries[id]++
	}
	s.insertReplay(id)
}

func (s *subscription) insertReplay(id int64) {
	i, found := slices.BinarySearch(s.replay, id)
	if !found {
		s.replay = slices.Insert(s.replay, i, id)
	}
}

func (s *subscription) removeReplay(id int64) {
	if i, found := slices.BinarySearch(s.replay, id); found {
		s.replay = slices.Delete(s.replay, i, i+1)
	}
}

// requeueAll takes back every entry pending on c.
func (s *subscription) requeueAll(c *consumer, countIt bool) {
	var ids []int64
	for id, holder := range s.pending {
		if holder == c {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		s.requeue(id, countIt)
	}
}

// reset moves the cursor so that start is the next entry delivered,
// forgetting every acknowledgement and pending entry at or after it, as a
// seek does.
func (s *subscription) reset(start int64) {
	for id := range s.pending {
		s.release(id)
	}
	s.replay = nil
	s.delayed = nil
	clear(s.acked)
	s.markDelete = start - 1
	s.readPos = start
	s.topic.cursorsDirty = true
}

// disconnectConsumers detaches every consumer and tells its client
// (CLOSE_CONSUMER), which reconnects and subscribes again, as after a seek.
// A non-durable subscription is kept for its consumers' return. Caller
// holds topic.mu.
func (s *subscription) disconnectConsumers() {
	s.keepWhenEmpty = !s.durable
	for _, c := range append([]*consumer(nil), s.consumers...) {
		s.topic.detachLocked(c)
		c.conn.send(closeConsumerCommand(c.id), nil)
	}
}
