package broker

import (
	"google.golang.org/protobuf/proto"

	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

// maxReplay bounds how many entries Key_Shared may set aside, because
// their key is held by a busy consumer, before it stops reading ahead.
const maxReplay = 1000

// dispatch sends every entry it can to consumers with permits: first the
// entries to replay, in id order, then new entries. Caller holds topic.mu.
//
// Exclusive and Failover deliver in order to the active consumer. Shared
// deals entries round robin. Key_Shared sends an entry to the consumer
// owning its hash (keySelector), unless another consumer still holds
// unacknowledged entries of that hash (after a change of owners) or an
// earlier entry of the hash is waiting: it then sets the entry aside, so
// that a key's entries are never held by two consumers at once and never
// overtake each other.
func (s *subscription) dispatch() {
	if len(s.consumers) == 0 || s.topic.quiesced {
		return
	}
	t := s.topic
	var blocked map[uint32]bool // Key_Shared hashes that must wait in this pass
	i := 0                      // position in s.replay
	for s.hasPermits() {
		var id int64
		fromReplay := i < len(s.replay)
		switch {
		case fromReplay:
			id = s.replay[i]
		case s.readPos < t.nextID() && (s.subType != wirev1.CommandSubscribe_Key_Shared || len(s.replay) < maxReplay):
			id = s.readPos
		default:
			return
		}
		e := t.entry(id)
		if e == nil || s.isAcked(id) {
			s.advance(fromReplay, i)
			continue
		}
		if s.delayUntilDue(e) {
			s.advance(fromReplay, i)
			continue
		}
		c := s.pick(e, blocked)
		if c == nil {
			if s.subType != wirev1.CommandSubscribe_Key_Shared {
				return
			}
			if blocked == nil {
				blocked = make(map[uint32]bool)
			}
			blocked[s.stickyHash(e)] = true
			if !fromReplay {
				s.replay = append(s.replay, id) // the largest id so far
				s.readPos++
			}
			i++
			continue
		}
		if !s.deliver(c, e) {
			return
		}
		s.advance(fromReplay, i)
	}
}

// advance consumes the candidate just looked at.
func (s *subscription) advance(fromReplay bool, i int) {
	if fromReplay {
		s.replay = append(s.replay[:i], s.replay[i+1:]...)
	} else {
		s.readPos++
	}
}

func (s *subscription) hasPermits() bool {
	switch s.subType {
	case wirev1.CommandSubscribe_Exclusive, wirev1.CommandSubscribe_Failover:
		return s.active != nil && s.active.permits > 0
	}
	for _, c := range s.consumers {
		if c.permits > 0 {
			return true
		}
	}
	return false
}

// pick chooses the consumer for e, or nil when e must wait.
func (s *subscription) pick(e *entry, blocked map[uint32]bool) *consumer {
	switch s.subType {
	case wirev1.CommandSubscribe_Shared:
		n := len(s.consumers)
		for k := range n {
			c := s.consumers[(s.nextShared+k)%n]
			if c.permits > 0 {
				s.nextShared = (s.nextShared + k + 1) % n
				return c
			}
		}
		return nil
	case wirev1.CommandSubscribe_Key_Shared:
		hash := s.stickyHash(e)
		if blocked[hash] {
			return nil
		}
		c := s.keys.owner(hash)
		if c == nil || c.permits <= 0 {
			return nil
		}
		if h := s.keyHolds[hash]; s.keys.drain && h != nil && h.consumer != c {
			return nil
		}
		return c
	default:
		if s.active != nil && s.active.permits > 0 {
			return s.active
		}
		return nil
	}
}

// deliver sends e to c and records it as pending. It returns false when
// the entry's bytes cannot be read back from disk.
func (s *subscription) deliver(c *consumer, e *entry) bool {
	data, err := s.topic.message(e)
	if err != nil {
		s.topic.b.log.Error("reading entry", "topic", s.topic.name.String(), "entry", e.id, "err", err)
		return false
	}
	c.permits -= int64(e.numMessages)
	c.unacked += int64(e.numMessages)
	s.unacked += int64(e.numMessages)
	s.pending[e.id] = c
	if s.subType == wirev1.CommandSubscribe_Key_Shared && s.keys.drain {
		s.takeKeyHold(c, e)
	}
	n, size := int64(e.numMessages), e.storedBytes()
	c.msgOut.add(n)
	c.bytesOut.add(size)
	s.msgOut.add(n)
	s.bytesOut.add(size)
	s.topic.msgOut.add(n)
	s.topic.bytesOut.add(size)
	msg := &wirev1.CommandMessage{
		ConsumerId: proto.Uint64(c.id),
		MessageId:  s.topic.messageID(e.id),
	}
	if n := s.redeliveries[e.id]; n > 0 {
		msg.RedeliveryCount = proto.Uint32(n)
	}
	c.conn.send(&wirev1.BaseCommand{Type: wirev1.BaseCommand_MESSAGE.Enum(), Message: msg}, data)
	return true
}

// consumersChanged recomputes who receives what after a consumer joined
// or left. For Exclusive and Failover, a change of active consumer takes
// back what the previous one had not acknowledged and tells the consumers.
func (s *subscription) consumersChanged() {
	switch s.subType {
	case wirev1.CommandSubscribe_Key_Shared:
		if len(s.consumers) == 0 {
			s.keys = nil // the next consumer chooses the mode
		}
	case wirev1.CommandSubscribe_Exclusive, wirev1.CommandSubscribe_Failover:
		next := s.chooseActive()
		if next == s.active {
			return
		}
		if s.active != nil {
			s.requeueAll(s.active, false)
		}
		s.active = next
		if s.subType == wirev1.CommandSubscribe_Failover {
			for _, c := range s.consumers {
				c.conn.send(&wirev1.BaseCommand{
					Type: wirev1.BaseCommand_ACTIVE_CONSUMER_CHANGE.Enum(),
					ActiveConsumerChange: &wirev1.CommandActiveConsumerChange{
						ConsumerId: proto.Uint64(c.id),
						IsActive:   proto.Bool(c == next),
					},
				}, nil)
			}
		}
	}
}
