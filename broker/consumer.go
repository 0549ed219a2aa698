package broker

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

// consumer is one consumer attached to a subscription through a
// connection. Its mutable fields are guarded by the topic's mutex.
type consumer struct {
	id               uint64 // the client's id, unique per connection
	uid              uint64 // unique in the broker
	conn             *conn
	sub              *subscription
	name             string
	priority         int32
	ranges           []slotRange // the hash ranges of a sticky Key_Shared consumer
	since            time.Time
	metadata         map[string]string // the client's Properties, for stats
	permits          int64
	unacked          int64 // messages delivered and not acknowledged
	msgOut, bytesOut meter
}

var (
	errConsumerBusy = errors.New("consumer busy")
	errKeyAssign    = errors.New("cannot assign Key_Shared hash ranges")
)

// sortConsumers orders consumers as Failover ranks them: by priority level,
// then by name.
func sortConsumers(cs []*consumer) {
	sort.SliceStable(cs, func(i, j int) bool {
		if cs[i].priority != cs[j].priority {
			return cs[i].priority < cs[j].priority
		}
		return cs[i].name < cs[j].name
	})
}

// startPosition returns the id of the first entry a new subscription
// delivers. Durable subscriptions start at the initial position; a
// non-durable one (a reader) starts at the entry of its start message id
// itself: the client sends only ledger and entry, and discards what lies
// before its start (or at it, unless the start is inclusive). Caller holds
// t.mu.
func (t *topic) startPosition(req *wirev1.CommandSubscribe) int64 {
	start := req.GetStartMessageId()
	if req.GetDurable() || start == nil {
		if req.GetInitialPosition() == wirev1.CommandSubscribe_Earliest {
			return t.firstID
		}
		return t.nextID()
	}
	ledger, entryID := int64(start.GetLedgerId()), int64(start.GetEntryId())
	switch {
	case ledger == math.MaxInt64 || entryID == math.MaxInt64:
		return t.nextID()
	case ledger < 0 || entryID < 0:
		return t.firstID
	default:
		return min(max(entryID, t.firstID), t.nextID())
	}
}

// subscribe attaches a new consumer to the subscription, creating it when
// needed.
func (t *topic) subscribe(c *conn, req *wirev1.CommandSubscribe) (*consumer, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.deleted {
		return nil, errTopicNotFound
	}
	s := t.subs[req.GetSubscription()]
	if s != nil && len(s.consumers) == 0 && s.subType != req.GetSubType() {
		// As in Pulsar, a subscription without consumers takes the type
		// of the next one.
		s.subType = req.GetSubType()
		s.active = nil
		t.cursorsDirty = true
	}
	if s != nil && s.subType != req.GetSubType() {
		return nil, fmt.Errorf("%w: subscription %q is %s, not %s", errConsumerBusy, s.name, s.subType, req.GetSubType())
	}
	if s != nil && s.subType == wirev1.CommandSubscribe_Exclusive && len(s.consumers) > 0 {
		if holder := s.consumers[0].conn; holder != c {
			holder.probe() // frees the subscription if the holder is gone
		}
		return nil, fmt.Errorf("%w: exclusive subscription %q already has a consumer", errConsumerBusy, s.name)
	}
	cs := &consumer{
		id:       req.GetConsumerId(),
		uid:      t.b.nextConsumerUID.Add(1),
		conn:     c,
		name:     req.GetConsumerName(),
		priority: req.GetPriorityLevel(),
		since:    time.Now(),
		metadata: keyValues(req.GetMetadata()),
	}
	var keys *keyShared
	if req.GetSubType() == wirev1.CommandSubscribe_Key_Shared {
		var err error
		if keys, err = joinKeyShared(s, cs, req.GetKeySharedMeta(), t.b.cfg); err != nil {
			return nil, err
		}
	}
	if s == nil {
		s = newSubscription(t, req.GetSubscription(), req.GetSubType(), req.GetDurable(), t.startPosition(req))
		t.subs[s.name] = s
		t.cursorsDirty = true
	}
	s.keepWhenEmpty = false
	if keys != nil {
		s.keys = keys
	}
	cs.sub = s
	s.consumers = append(s.consumers, cs)
	c.mu.Lock()
	c.consumers[cs.id] = cs
	c.mu.Unlock()
	s.consumersChanged()
	return cs, nil
}

// removeConsumer detaches cs from its subscription and connection; what
// it had not acknowledged goes to the other consumers, its redelivery
// counts unchanged (a consumer leaving is not a redelivery). When the last
// consumer leaves, the subscription forgets every redelivery count, as
// Pulsar's in-memory redelivery tracker does. A non-durable subscription
// ends with its last consumer.
func (t *topic) removeConsumer(cs *consumer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.detachLocked(cs)
}

// detachLocked is removeConsumer with t.mu held.
func (t *topic) detachLocked(cs *consumer) {
	cs.conn.mu.Lock()
	if cs.conn.consumers[cs.id] == cs {
		delete(cs.conn.consumers, cs.id)
	}
	cs.conn.mu.Unlock()
	s := cs.sub
	i := -1
	for k, other := range s.consumers {
		if other == cs {
			i = k
		}
	}
	if i < 0 {
		return
	}
	s.consumers = append(s.consumers[:i], s.consumers[i+1:]...)
	if s.keys != nil {
		s.keys.remove(cs)
	}
	s.requeueAll(cs, false)
	if s.active == cs {
		s.active = nil
	}
	s.consumersChanged()
	if len(s.consumers) == 0 {
		clear(s.redeliveries)
	}
	if len(s.consumers) == 0 && !s.durable && !s.keepWhenEmpty && t.subs[s.name] == s {
		delete(t.subs, s.name)
		return
	}
	s.dispatch()
}
