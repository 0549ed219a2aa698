package broker

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/alpes/alpes/internal/pulsarwire"
	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

// producer is a producer attached to a topic through a connection. Its
// fields are immutable after creation, except waiting, which its topic's
// lock guards.
type producer struct {
	id    uint64 // the client's id, unique per connection
	conn  *conn
	topic *topic
	name  string
	since time.Time
	// waiting: a WaitForExclusive producer queued until the topic is
	// free (see topic.waiting); its PRODUCER request is answered then.
	waiting   bool
	requestID uint64
	req       *wirev1.CommandProducer
	version   []byte // the schema version of its PRODUCER_SUCCESS
	// accessMode and metadata are what the client asked for, for stats.
	accessMode wirev1.ProducerAccessMode
	metadata   map[string]string
	// msgIn and bytesIn count what the producer sent and got a receipt
	// for, duplicates included; guarded by the topic's mutex.
	msgIn, bytesIn meter
}

func (c *conn) handleProducer(req *wirev1.CommandProducer) {
	reqID := req.GetRequestId()
	name, err := parseTopicName(req.GetTopic())
	if err != nil {
		c.send(errorCommand(reqID, wirev1.ServerError_InvalidTopicName, err.Error()), nil)
		return
	}
	t, err := c.b.topic(name, true)
	if err != nil {
		c.send(errorCommand(reqID, topicErrorCode(err), err.Error()), nil)
		return
	}
	if existing := c.producerByID(req.GetProducerId()); existing != nil {
		// A retried PRODUCER for a producer that already exists (or waits).
		t.mu.Lock()
		resp := t.producerSuccess(reqID, existing.name, nil)
		resp.ProducerSuccess.ProducerReady = proto.Bool(!existing.waiting)
		t.mu.Unlock()
		c.send(resp, nil)
		return
	}
	resp, err := t.addProducer(c, req)
	if err != nil {
		c.send(errorCommand(reqID, producerErrorCode(err), err.Error()), nil)
		return
	}
	c.send(resp, nil)
}

var (
	errProducerBusy   = errors.New("producer busy")
	errProducerFenced = errors.New("producer fenced")
	errIncompatible   = errors.New("incompatible schema")
)

func topicErrorCode(err error) wirev1.ServerError {
	switch {
	case errors.Is(err, errTopicNotFound):
		return wirev1.ServerError_TopicNotFound
	case errors.Is(err, errBrokerClosed):
		return wirev1.ServerError_ServiceNotReady
	default:
		return wirev1.ServerError_NotAllowedError
	}
}

func producerErrorCode(err error) wirev1.ServerError {
	switch {
	case errors.Is(err, errProducerBusy):
		return wirev1.ServerError_ProducerBusy
	case errors.Is(err, errProducerFenced):
		return wirev1.ServerError_ProducerFenced
	case errors.Is(err, errIncompatible):
		return wirev1.ServerError_IncompatibleSchema
	default:
		return topicErrorCode(err)
	}
}

// addProducer attaches a producer to t, naming it when the client did not,
// and returns the PRODUCER_SUCCESS to send: with producer_ready false for
// a WaitForExclusive producer that must wait for the topic (a second one
// follows when it gets it).
func (t *topic) addProducer(c *conn, req *wirev1.CommandProducer) (*wirev1.BaseCommand, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.deleted {
		return nil, errTopicNotFound
	}
	name := req.GetProducerName()
	if name == "" {
		name = "alpes-" + strconv.FormatUint(t.b.nextProducerName.Add(1)-1, 10)
	}
	if other, busy := t.producers[name]; busy {
		if other.conn != c {
			other.conn.probe()
		}
		return nil, fmt.Errorf("%w: a producer named %q is already connected to %s", errProducerBusy, name, t.name)
	}
	var version []byte
	if s := req.GetSchema(); s != nil {
		var err error
		if version, err = t.schemaVersion(s); err != nil {
			return nil, err
		}
	}
	p := &producer{id: req.GetProducerId(), conn: c, topic: t, name: name, since: time.Now(),
		requestID: req.GetRequestId(), req: req, version: version,
		accessMode: req.GetProducerAccessMode(), metadata: keyValues(req.GetMetadata())}
	ready, err := t.grantAccess(p)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.producers[p.id] = p
	c.mu.Unlock()
	if !ready {
		p.waiting = true
		t.waiting = append(t.waiting, p)
		resp := t.producerSuccess(p.requestID, name, version)
		resp.ProducerSuccess.ProducerReady = proto.Bool(false)
		return resp, nil
	}
	t.producers[name] = p
	delete(t.inactive, name)
	t.createInitialSubscription(req.GetInitialSubscriptionName())
	return t.producerSuccess(p.requestID, name, version), nil
}

// grantAccess decides, as Pulsar does, whether p may produce on t now
// (true), must wait for the topic (false: WaitForExclusive), or is refused.
// A Shared producer is busy beside an exclusive one (held or waiting); an
// Exclusive one is fenced beside any other; ExclusiveWithFencing closes
// every other producer and fails those waiting; an exclusive producer that
// comes back with a topic epoch older than the topic's was replaced in
// between, and is fenced. Caller holds t.mu.
func (t *topic) grantAccess(p *producer) (bool, error) {
	switch p.req.GetProducerAccessMode() {
	case wirev1.ProducerAccessMode_Shared:
		if t.exclusive != "" || len(t.waiting) > 0 {
			return false, fmt.Errorf("%w: topic %s has an exclusive producer: %s", errProducerBusy, t.name, t.exclusive)
		}
		return true, nil
	case wirev1.ProducerAccessMode_Exclusive:
		if t.exclusive != "" || len(t.waiting) > 0 {
			return false, fmt.Errorf("%w: topic %s has an exclusive producer: %s", errProducerFenced, t.name, t.exclusive)
		}
		if len(t.producers) > 0 {
			return false, fmt.Errorf("%w: topic %s has shared producers", errProducerFenced, t.name)
		}
	case wirev1.ProducerAccessMode_ExclusiveWithFencing:
		t.fenceProducers()
	case wirev1.ProducerAccessMode_WaitForExclusive:
		if t.exclusive != "" || len(t.producers) > 0 {
			return false, nil
		}
	default:
		return false, fmt.Errorf("%w: producer access mode %v", errBadRequest, p.req.GetProducerAccessMode())
	}
	return true, t.claim(p)
}

// claim makes p the topic's exclusive producer, in a new topic epoch (or
// the one it had, when it comes back). Caller holds t.mu.
func (t *topic) claim(p *producer) error {
	if p.req.TopicEpoch != nil && int64(p.req.GetTopicEpoch()) < t.epoch {
		return fmt.Errorf("%w: the topic epoch moved on to %d; the producer's is %d", errProducerFenced, t.epoch, p.req.GetTopicEpoch())
	}
	t.exclusive = p.name
	if p.req.TopicEpoch != nil {
		t.epoch = int64(p.req.GetTopicEpoch())
	} else {
		t.epoch++
	}
	return nil
}

// fenceProducers closes every producer of t and fails every waiting one,
// for an ExclusiveWithFencing producer. Their clients come back with an
// older topic epoch and are fenced. Caller holds t.mu.
func (t *topic) fenceProducers() {
	for _, w := range t.waiting {
		w.conn.send(errorCommand(w.requestID, wirev1.ServerError_ProducerFenced, "fenced out by an ExclusiveWithFencing producer"), nil)
		w.conn.forget(w)
	}
	t.waiting = nil
	for name, p := range t.producers {
		p.conn.send(&wirev1.BaseCommand{Type: wirev1.BaseCommand_CLOSE_PRODUCER.Enum(),
			CloseProducer: &wirev1.CommandCloseProducer{ProducerId: proto.Uint64(p.id), RequestId: proto.Uint64(0)}}, nil)
		p.conn.forget(p)
		delete(t.producers, name)
	}
	t.exclusive = ""
}

// createInitialSubscription creates the durable subscription a producer
// names, at the earliest message, unless it exists: Pulsar does so for
// dead-letter producers, whose topic must keep what they write until
// someone reads it. Caller holds t.mu.
func (t *topic) createInitialSubscription(name string) {
	if name == "" {
		return
	}
	if _, ok := t.subs[name]; ok {
		return
	}
	t.subs[name] = newSubscription(t, name, wirev1.CommandSubscribe_Exclusive, true, t.firstID)
	t.cursorsDirty = true
}

// producerSuccess builds PRODUCER_SUCCESS with the last sequence id the
// topic took for that producer name, persisted or still being written, as
// Pulsar answers (-1 without deduplication), and the topic's epoch once an
// exclusive producer set one. Caller holds t.mu.
func (t *topic) producerSuccess(reqID uint64, name string, schemaVersion []byte) *wirev1.BaseCommand {
	last := int64(-1)
	if seq, ok := t.pushed[name]; ok && t.b.deduplicationEnabled(t.name) {
		last = seq
	}
	if schemaVersion == nil {
		// Pulsar always answers with a schema version, empty without a
		// schema; the Java client refuses an answer without one.
		schemaVersion = []byte{}
	}
	resp := &wirev1.CommandProducerSuccess{
		RequestId:      proto.Uint64(reqID),
		ProducerName:   proto.String(name),
		LastSequenceId: proto.Int64(last),
		SchemaVersion:  schemaVersion,
		ProducerReady:  proto.Bool(true),
	}
	if t.epoch >= 0 {
		resp.TopicEpoch = proto.Uint64(uint64(t.epoch))
	}
	return &wirev1.BaseCommand{Type: wirev1.BaseCommand_PRODUCER_SUCCESS.Enum(), ProducerSuccess: resp}
}

// removeProducer detaches p from its topic and its connection. When p held
// the topic exclusively, the first producer waiting for it gets it.
func (t *topic) removeProducer(p *producer) {
	t.mu.Lock()
	switch {
	case p.waiting:
		t.waiting = slices.DeleteFunc(t.waiting, func(w *producer) bool { return w == p })
	case t.producers[p.name] == p:
		delete(t.producers, p.name)
		t.inactive[p.name] = time.Now()
		if t.exclusive == p.name {
			t.exclusive = ""
			t.promoteWaiting()
		}
	}
	t.mu.Unlock()
	p.conn.forget(p)
}

// promoteWaiting gives the free topic to the first waiting producer whose
// claim holds, and answers its PRODUCER request. Caller holds t.mu.
func (t *topic) promoteWaiting() {
	for len(t.waiting) > 0 {
		w := t.waiting[0]
		t.waiting = t.waiting[1:]
		w.waiting = false
		if err := t.claim(w); err != nil {
			w.conn.send(errorCommand(w.requestID, producerErrorCode(err), err.Error()), nil)
			w.conn.forget(w)
			continue
		}
		t.producers[w.name] = w
		delete(t.inactive, w.name)
		t.createInitialSubscription(w.req.GetInitialSubscriptionName())
		w.conn.send(t.producerSuccess(w.requestID, w.name, w.version), nil)
		return
	}
}

// forget removes p from the connection's producers.
func (c *conn) forget(p *producer) {
	c.mu.Lock()
	if c.producers[p.id] == p {
		delete(c.producers, p.id)
	}
	c.mu.Unlock()
}

func (c *conn) handleCloseProducer(req *wirev1.CommandCloseProducer) {
	if p := c.producerByID(req.GetProducerId()); p != nil {
		p.topic.removeProducer(p)
	}
	c.send(successCommand(req.GetRequestId()), nil)
}

// handleSend stores one entry and answers with its receipt. It returns
// false, closing the connection, for a SEND without a message or from an
// unknown producer; the client then reconnects and resends what is pending.
func (c *conn) handleSend(req *wirev1.CommandSend, msg *pulsarwire.Message) bool {
	if msg == nil {
		c.log.Warn("SEND without a message")
		return false
	}
	p := c.producerByID(req.GetProducerId())
	if p == nil {
		c.log.Warn("SEND from an unknown producer", "producer_id", req.GetProducerId())
		return false
	}
	sendError := func(code wirev1.ServerError, err error) bool {
		c.send(&wirev1.BaseCommand{
			Type: wirev1.BaseCommand_SEND_ERROR.Enum(),
			SendError: &wirev1.CommandSendError{
				ProducerId: proto.Uint64(req.GetProducerId()),
				SequenceId: proto.Uint64(req.GetSequenceId()),
				Error:      code.Enum(),
				Message:    proto.String(err.Error()),
			},
		}, nil)
		return true
	}
	if err := msg.VerifyChecksum(); err != nil {
		return sendError(wirev1.ServerError_ChecksumError, err)
	}
	p.topic.countIn(max(int64(req.GetNumMessages()), 1), msg.WireLen())
	if len(msg.Raw) > c.b.cfg.MaxMessageSize+4 {
		return sendError(wirev1.ServerError_NotAllowedError, fmt.Errorf("message of %d bytes exceeds the limit", len(msg.Raw)))
	}
	md, err := msg.DecodeSummary()
	if err != nil {
		return sendError(wirev1.ServerError_UnknownError, err)
	}
	if !msg.HasChecksum {
		// Replayed frames always carry a checksum; compute the one that
		// the client did not send.
		msg.HasChecksum, msg.Checksum = true, pulsarwire.Checksum(msg.Raw)
	}
	p.topic.publish(p, req, msg, &md)
	return true
}

// countIn records a message received from a producer in the topic's
// counters. As in Pulsar, everything that passed the checksum counts,
// whether it is then stored, dropped as a duplicate or refused.
func (t *topic) countIn(messages, bytes int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.msgIn.add(messages)
	t.bytesIn.add(bytes)
}

// publish appends the entry unless deduplication finds it a duplicate,
// and queues the receipt behind the group commit. Deduplication follows
// Pulsar: per producer name, an entry whose sequence id (a batch's lowest)
// is at or below the last persisted one is a duplicate, receipted with
// ledger and entry -1; at or below the last pushed but not yet persisted
// one, it is refused with an error that makes the client reconnect and
// resend. A stored entry makes its highest sequence id (a batch's
// highest_sequence_id, when set) the producer's last, so a batch that
// starts at or below the last id and reaches above it is dropped whole.
func (t *topic) publish(p *producer, req *wirev1.CommandSend, msg *pulsarwire.Message, md *pulsarwire.MetadataSummary) {
	lowest := req.GetSequenceId()
	seq := max(lowest, req.GetHighestSequenceId())
	receipt := pulsarwire.SendReceipt{
		ProducerID:           req.GetProducerId(),
		SequenceID:           req.GetSequenceId(),
		HighestSequenceID:    req.GetHighestSequenceId(),
		HasHighestSequenceID: req.HighestSequenceId != nil,
	}
	sendError := func(code wirev1.ServerError, text string) {
		p.conn.send(&wirev1.BaseCommand{Type: wirev1.BaseCommand_SEND_ERROR.Enum(), SendError: &wirev1.CommandSendError{
			ProducerId: proto.Uint64(receipt.ProducerID), SequenceId: proto.Uint64(receipt.SequenceID),
			Error: code.Enum(), Message: proto.String(text),
		}}, nil)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.deleted {
		// The producer raced with the topic's deletion: the error makes
		// the client reconnect, to a new topic.
		sendError(wirev1.ServerError_TopicNotFound, "topic deleted")
		return
	}
	if t.failed != nil {
		sendError(wirev1.ServerError_PersistenceError, "the topic's log is unusable: "+t.failed.Error())
		return
	}
	name := sharedString(md.ProducerName, p.name)
	e := newEntry(msg, md, name)
	e.seq = seq
	// The chunks of a chunked message share its sequence id: only the
	// last chunk is checked and advances the sequence, as in Pulsar.
	if !e.innerChunk && t.b.deduplicationEnabled(t.name) {
		if pushed, ok := t.pushed[name]; ok && int64(lowest) <= pushed {
			if int64(lowest) > t.dedupOf(name) {
				sendError(wirev1.ServerError_PersistenceError, "sequence id not yet persisted: resend")
				return
			}
			receipt.LedgerID, receipt.EntryID, receipt.Partition = ^uint64(0), ^uint64(0), -1
			p.countReceipted(e)
			t.b.commits.enqueue(commitItem{conn: p.conn, receipt: receipt})
			return
		}
	}
	if err := t.append(e); err != nil {
		t.b.log.Error("storing entry", "topic", t.name.String(), "err", err)
		sendError(wirev1.ServerError_PersistenceError, "storing entry failed")
		return
	}
	// The message id, as messageID spells it.
	receipt.LedgerID, receipt.EntryID, receipt.Partition = ledgerID, uint64(e.id), t.partition
	p.countReceipted(e)
	t.b.commits.enqueue(commitItem{t: t, id: e.id, gen: t.gen, conn: p.conn, receipt: receipt})
}

// countReceipted records an entry the producer gets a receipt for, stored
// or a duplicate, in its own counters (Pulsar's per-publisher rates count
// both). Caller holds the topic's mutex.
func (p *producer) countReceipted(e *entry) {
	p.msgIn.add(int64(e.numMessages))
	p.bytesIn.add(e.storedBytes())
}

// newEntry returns the entry of msg, whose metadata md summarizes and
// whose producer name, as a string, is producer.
func newEntry(msg *pulsarwire.Message, md *pulsarwire.MetadataSummary, producer string) *entry {
	var key [stickyKeyScratch]byte
	return &entry{
		msg:         msg,
		size:        int64(len(msg.Raw)),
		producer:    producer,
		publishTime: md.PublishTime,
		numMessages: max(md.NumMessagesInBatch, 1),
		batched:     md.HasNumMessagesInBatch,
		keyHash:     keyHash(stickyKey(key[:0], md)),
		innerChunk:  md.NumChunksFromMsg > 1 && md.ChunkID != md.NumChunksFromMsg-1,
		chunked:     md.NumChunksFromMsg > 1,
		deliverAt:   md.DeliverAtTime,
	}
}

// sharedString returns b as a string: known itself when it holds the same
// bytes. The entries of a producer then share its name rather than each
// holding a copy, and storing one costs no allocation for it.
func sharedString(b []byte, known string) string {
	if string(b) == known {
		return known
	}
	return string(b)
}

// purgeInactiveProducersLoop forgets, once per
// Config.DeduplicationInactivityTimeout, the deduplication state of every
// producer name that has had no producer for longer than that, as Pulsar
// does, until the broker closes.
func (b *Broker) purgeInactiveProducersLoop() {
	tick := time.NewTicker(b.cfg.DeduplicationInactivityTimeout)
	defer tick.Stop()
	for {
		select {
		case <-b.done:
			return
		case now := <-tick.C:
			for _, t := range b.allTopics() {
				t.purgeInactiveProducers(now.Add(-b.cfg.DeduplicationInactivityTimeout))
			}
		}
	}
}

// purgeInactiveProducers forgets the deduplication state of the producer
// names without a producer since before cutoff.
func (t *topic) purgeInactiveProducers(cutoff time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for name, since := range t.inactive {
		if since.Before(cutoff) {
			delete(t.inactive, name)
			delete(t.dedup, name)
			delete(t.pushed, name)
			t.b.log.Info("forgot the deduplication state of an inactive producer", "topic", t.name.String(), "producer", name)
		}
	}
}
