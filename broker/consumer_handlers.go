package broker

import (
	"errors"

	"google.golang.org/protobuf/proto"

	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

func (c *conn) handleSubscribe(req *wirev1.CommandSubscribe) {
	reqID := req.GetRequestId()
	t, err := c.topicOf(req.GetTopic(), req.GetForceTopicCreation())
	if err != nil {
		c.send(errorCommand(reqID, topicErrorCode(err), err.Error()), nil)
		return
	}
	if existing := c.consumerByID(req.GetConsumerId()); existing != nil {
		c.send(successCommand(reqID), nil) // a retried SUBSCRIBE
		return
	}
	if s := req.GetSchema(); s != nil {
		t.mu.Lock()
		_, err := t.schemaVersion(s)
		t.mu.Unlock()
		if err != nil {
			c.send(errorCommand(reqID, schemaErrorCode(err), err.Error()), nil)
			return
		}
	}
	if _, err := t.subscribe(c, req); err != nil {
		code := wirev1.ServerError_ConsumerBusy
		switch {
		case errors.Is(err, errKeyAssign):
			code = wirev1.ServerError_ConsumerAssignError
		case errors.Is(err, errTopicNotFound):
			code = wirev1.ServerError_TopicNotFound
		}
		c.send(errorCommand(reqID, code, err.Error()), nil)
		return
	}
	c.send(successCommand(reqID), nil)
}

// withConsumer runs fn on the connection's consumer with that id, under
// its topic's lock, and reports whether the consumer exists.
func (c *conn) withConsumer(id uint64, fn func(cs *consumer)) bool {
	cs := c.consumerByID(id)
	if cs == nil {
		return false
	}
	t := cs.sub.topic
	t.mu.Lock()
	defer t.mu.Unlock()
	if c.consumerByID(id) != cs {
		return false // closed meanwhile
	}
	fn(cs)
	return true
}

func (c *conn) handleFlow(req *wirev1.CommandFlow) {
	c.withConsumer(req.GetConsumerId(), func(cs *consumer) {
		cs.permits += int64(req.GetMessagePermits())
		cs.sub.dispatch()
	})
}

// handleAck applies acknowledgements. Partial acknowledgements of a batch
// (an ack set) are ignored: the client acknowledges the whole entry once
// all its messages are acknowledged.
func (c *conn) handleAck(req *wirev1.CommandAck) {
	found := c.withConsumer(req.GetConsumerId(), func(cs *consumer) {
		s := cs.sub
		for _, id := range req.GetMessageId() {
			if len(id.GetAckSet()) > 0 && !allZero(id.GetAckSet()) {
				continue
			}
			entryID := int64(id.GetEntryId())
			if req.GetAckType() == wirev1.CommandAck_Cumulative {
				s.ackCumulative(entryID)
			} else {
				s.ackIndividual(entryID)
			}
		}
		s.dispatch()
		s.topic.trim()
	})
	if req == nil || req.RequestId == nil { // a malformed ACK without its body, or one that asks no answer
		return
	}
	resp := &wirev1.CommandAckResponse{ConsumerId: proto.Uint64(req.GetConsumerId()), RequestId: req.RequestId}
	if !found {
		resp.Error = wirev1.ServerError_ConsumerNotFound.Enum()
		resp.Message = proto.String("consumer not found")
	}
	c.send(&wirev1.BaseCommand{Type: wirev1.BaseCommand_ACK_RESPONSE.Enum(), AckResponse: resp}, nil)
}

func allZero(words []int64) bool {
	for _, w := range words {
		if w != 0 {
			return false
		}
	}
	return true
}

// handleRedeliver takes back unacknowledged entries of the consumer (the
// listed ones, or all when the list is empty) and dispatches them again.
// As in Pulsar, Shared and Key_Shared subscriptions count the redelivery
// (the count MESSAGE carries, which dead-letter policies use); Exclusive
// and Failover ones keep no count: their messages always come with 0.
func (c *conn) handleRedeliver(req *wirev1.CommandRedeliverUnacknowledgedMessages) {
	c.withConsumer(req.GetConsumerId(), func(cs *consumer) {
		s := cs.sub
		countIt := s.subType == wirev1.CommandSubscribe_Shared || s.subType == wirev1.CommandSubscribe_Key_Shared
		if len(req.GetMessageIds()) == 0 {
			s.requeueAll(cs, countIt)
		}
		for _, id := range req.GetMessageIds() {
			entryID := int64(id.GetEntryId())
			if s.pending[entryID] == cs {
				s.requeue(entryID, countIt)
			}
		}
		s.dispatch()
	})
}

func (c *conn) handleCloseConsumer(req *wirev1.CommandCloseConsumer) {
	if cs := c.consumerByID(req.GetConsumerId()); cs != nil {
		cs.sub.topic.removeConsumer(cs)
	}
	c.send(successCommand(req.GetRequestId()), nil)
}

// handleUnsubscribe deletes the subscription. Without force it refuses
// while other consumers are attached, as Pulsar does.
func (c *conn) handleUnsubscribe(req *wirev1.CommandUnsubscribe) {
	reqID := req.GetRequestId()
	var refused bool
	found := c.withConsumer(req.GetConsumerId(), func(cs *consumer) {
		s, t := cs.sub, cs.sub.topic
		if len(s.consumers) > 1 && !req.GetForce() {
			refused = true
			return
		}
		for _, other := range append([]*consumer(nil), s.consumers...) {
			t.detachLocked(other)
			if other != cs {
				other.conn.send(closeConsumerCommand(other.id), nil)
			}
		}
		delete(t.subs, s.name)
		t.cursorsDirty = true
	})
	switch {
	case !found:
		c.send(errorCommand(reqID, wirev1.ServerError_ConsumerNotFound, "consumer not found"), nil)
	case refused:
		c.send(errorCommand(reqID, wirev1.ServerError_ConsumerBusy, "subscription has other consumers"), nil)
	default:
		c.send(successCommand(reqID), nil)
	}
}

func closeConsumerCommand(consumerID uint64) *wirev1.BaseCommand {
	return &wirev1.BaseCommand{
		Type: wirev1.BaseCommand_CLOSE_CONSUMER.Enum(),
		CloseConsumer: &wirev1.CommandCloseConsumer{
			ConsumerId: proto.Uint64(consumerID),
			RequestId:  proto.Uint64(0),
		},
	}
}

// handleSeek moves the subscription's cursor to a message id or a publish
// time. As in Pulsar, the subscription's consumers are then disconnected
// (CLOSE_CONSUMER) and reconnect to read from the new position.
func (c *conn) handleSeek(req *wirev1.CommandSeek) {
	reqID := req.GetRequestId()
	found := c.withConsumer(req.GetConsumerId(), func(cs *consumer) {
		s, t := cs.sub, cs.sub.topic
		var start int64
		if id := req.GetMessageId(); id != nil {
			entryID := int64(id.GetEntryId())
			switch {
			case int64(id.GetLedgerId()) < 0 || entryID < 0:
				start = t.firstID
			case entryID > t.nextID():
				start = t.nextID()
			default:
				start = max(entryID, t.firstID)
			}
		} else {
			start = t.firstIDAtOrAfter(req.GetMessagePublishTime())
		}
		s.reset(start)
		s.disconnectConsumers()
	})
	if !found {
		c.send(errorCommand(reqID, wirev1.ServerError_ConsumerNotFound, "consumer not found"), nil)
		return
	}
	c.send(successCommand(reqID), nil)
}

// handleGetLastMessageID answers the topic's last message id (entry -1
// when the topic is empty; the last batch index for a batch entry) and the
// subscription's mark-delete position.
func (c *conn) handleGetLastMessageID(req *wirev1.CommandGetLastMessageId) {
	reqID := req.GetRequestId()
	var resp *wirev1.CommandGetLastMessageIdResponse
	found := c.withConsumer(req.GetConsumerId(), func(cs *consumer) {
		t := cs.sub.topic
		last := t.messageID(t.lastID())
		if e := t.entry(t.lastID()); e != nil && e.batched {
			last.BatchIndex = proto.Int32(e.numMessages - 1)
		}
		resp = &wirev1.CommandGetLastMessageIdResponse{
			RequestId:                  proto.Uint64(reqID),
			LastMessageId:              last,
			ConsumerMarkDeletePosition: t.messageID(cs.sub.markDelete),
		}
	})
	if !found {
		c.send(errorCommand(reqID, wirev1.ServerError_ConsumerNotFound, "consumer not found"), nil)
		return
	}
	c.send(&wirev1.BaseCommand{
		Type:                     wirev1.BaseCommand_GET_LAST_MESSAGE_ID_RESPONSE.Enum(),
		GetLastMessageIdResponse: resp,
	}, nil)
}
