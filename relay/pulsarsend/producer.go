package pulsarsend

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"google.golang.org/protobuf/proto"

	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

// Receipt is the broker's answer to one message.
type Receipt struct {
	SequenceID uint64
	// LedgerID and EntryID locate the stored entry; both are -1 when the
	// broker dropped it as a duplicate.
	LedgerID, EntryID int64
	// BatchIndex is the message's place in its batch, or -1 when it was
	// sent on its own.
	BatchIndex int32
}

// Duplicate reports whether the broker dropped the message as a duplicate
// of one it had persisted under the same producer name and sequence id.
func (r Receipt) Duplicate() bool { return r.LedgerID == -1 && r.EntryID == -1 }

// Producer sends messages to one topic under one producer name, one per
// entry (Send) or several in one (SendBatch), with the sequence ids its
// caller gives. It is safe for concurrent use,
// but sends must come in increasing sequence id order to be receipted: the
// caller that sends from several goroutines orders them itself.
type Producer struct {
	conn    *conn
	id      uint64
	topic   string
	name    string
	lastSeq int64

	mu       sync.Mutex
	pending  queue         // sends awaiting their receipts, oldest first
	receipts uint64        // receipts so far, for the receipt timeout
	progress time.Time     // when the keeper last saw receipts move, or none pending
	seen     uint64        // receipts when it last looked
	drained  chan struct{} // closed when pending empties, for Flush; nil unless someone waits
	err      error         // why the producer failed; nil while it works
	failed   chan struct{} // closed when err is set

	corruptChecksum bool // tests only: every SEND carries a wrong checksum
}

// register creates a producer called name on topic over c.
func (c *conn) register(ctx context.Context, topic, name string) (*Producer, error) {
	p := &Producer{conn: c, id: c.newID(), topic: topic, name: name, failed: make(chan struct{})}
	// Registered first, so that a CLOSE_PRODUCER or a connection failure
	// racing with the handshake finds it.
	c.addProducer(p)
	resp, err := c.request(ctx, func(id uint64) *wirev1.BaseCommand {
		return &wirev1.BaseCommand{
			Type: wirev1.BaseCommand_PRODUCER.Enum(),
			Producer: &wirev1.CommandProducer{
				Topic:                    &p.topic,
				ProducerId:               proto.Uint64(p.id),
				RequestId:                proto.Uint64(id),
				ProducerName:             &p.name,
				UserProvidedProducerName: proto.Bool(true),
			},
		}
	})
	if err != nil {
		c.removeProducer(p)
		p.fail(err)
		return nil, err
	}
	ps := resp.GetProducerSuccess()
	if ps == nil {
		c.removeProducer(p)
		err := fmt.Errorf("%w: a %s answered PRODUCER", ErrConnection, resp.GetType())
		p.fail(err)
		return nil, err
	}
	p.lastSeq = ps.GetLastSequenceId()
	return p, nil
}

// Topic returns the producer's topic.
func (p *Producer) Topic() string { return p.topic }

// Name returns the producer's name.
func (p *Producer) Name() string { return p.name }

// LastSequenceID returns the highest sequence id the broker had persisted
// under the producer's name when the producer registered (PRODUCER_SUCCESS's
// last_sequence_id): -1 for none, or when the topic does not deduplicate.
func (p *Producer) LastSequenceID() int64 { return p.lastSeq }

// Done is closed when the producer has failed or closed; Err says why.
func (p *Producer) Done() <-chan struct{} { return p.failed }

// Err returns why the producer failed, or nil while it works.
func (p *Producer) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// ErrUnsupportedMessage is returned by Send for a message that asks for
// something this producer does not do (see the package documentation).
var ErrUnsupportedMessage = errors.New("pulsarsend: unsupported message")

// Send queues msg for sending under msg.SequenceID, which is required, and
// calls done once: with the broker's receipt, or with the error that failed
// the producer before the receipt came. It does not wait for the network.
// msg must not change until done is called. An error returned means msg
// was not queued and done will not be called.
func (p *Producer) Send(msg *pulsar.ProducerMessage, done func(Receipt, error)) error {
	if err := supported(msg); err != nil {
		return err
	}
	seq := uint64(*msg.SequenceID)
	return p.queue(outgoing{p: p, msg: msg, seq: seq}, pendingSend{seq: seq, done: done})
}

// queue hands o to the writer and records s as pending, unless the
// producer has failed. Both happen under p.mu: the reader, which takes p.mu
// for the receipt, finds the send pending.
func (p *Producer) queue(o outgoing, s pendingSend) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	if err := p.conn.enqueue(o); err != nil {
		return err
	}
	p.pending.push(s)
	return nil
}

// BatchMessage is one message of a batch, and the callback its receipt
// goes to.
type BatchMessage struct {
	Msg  *pulsar.ProducerMessage
	Done func(Receipt, error)
}

// ErrMixedBatch is returned by SendBatch for messages that cannot share an
// entry: their sequence ids do not grow, or their routing keys differ.
var ErrMixedBatch = errors.New("pulsarsend: messages cannot share a batch")

// SendBatch queues batch as one entry, calling each message's Done once,
// as Send does. A batch of one is sent as Send sends it. Sequence ids must
// grow strictly through the batch, and the messages must share one routing
// key: the same ordering key, or the same key and no ordering key. A
// Key_Shared subscription dispatches an entry whole by that key, so the
// batch goes where each message would have gone on its own.
//
// The broker judges a batch for deduplication by its lowest sequence id,
// against the highest it has taken under the producer's name, and then
// remembers the batch's highest: a batch that straddles what the broker
// holds is dropped (or refused) whole, its new messages with it. A caller
// that resends after a crash therefore sends nothing at or below
// LastSequenceID in a batch with anything above it. batch and its messages
// must not change until every Done is called. An error returned means
// nothing was queued and no Done will be called.
func (p *Producer) SendBatch(batch []BatchMessage) error {
	if len(batch) == 1 {
		return p.Send(batch[0].Msg, batch[0].Done)
	}
	if len(batch) == 0 {
		return nil
	}
	for i, m := range batch {
		if err := supported(m.Msg); err != nil {
			return err
		}
		switch first := batch[0].Msg; {
		case i > 0 && *m.Msg.SequenceID <= *batch[i-1].Msg.SequenceID:
			return fmt.Errorf("%w: sequence id %d after %d", ErrMixedBatch, *m.Msg.SequenceID, *batch[i-1].Msg.SequenceID)
		case m.Msg.OrderingKey != first.OrderingKey:
			return fmt.Errorf("%w: ordering keys %q and %q", ErrMixedBatch, first.OrderingKey, m.Msg.OrderingKey)
		case first.OrderingKey == "" && m.Msg.Key != first.Key:
			return fmt.Errorf("%w: keys %q and %q without ordering keys", ErrMixedBatch, first.Key, m.Msg.Key)
		}
	}
	return p.queue(outgoing{p: p, batch: batch}, pendingSend{seq: uint64(*batch[0].Msg.SequenceID), batch: batch})
}

// supported refuses what this producer does not send as pulsar-client-go
// would.
func supported(msg *pulsar.ProducerMessage) error {
	switch {
	case msg.SequenceID == nil:
		return fmt.Errorf("%w: no sequence id", ErrUnsupportedMessage)
	case msg.Value != nil || msg.Schema != nil:
		return fmt.Errorf("%w: a schema value", ErrUnsupportedMessage)
	case msg.DeliverAfter != 0 || !msg.DeliverAt.IsZero():
		return fmt.Errorf("%w: delayed delivery", ErrUnsupportedMessage)
	case msg.ReplicationClusters != nil || msg.DisableReplication:
		return fmt.Errorf("%w: replication settings", ErrUnsupportedMessage)
	case msg.Transaction != nil:
		return fmt.Errorf("%w: a transaction", ErrUnsupportedMessage)
	}
	return nil
}

// receipted completes the oldest pending send with rc. A receipt for an id
// below it is one already completed, and ignored; one above it means the
// broker skipped a send, which fails the connection.
func (p *Producer) receipted(rc receipt) error {
	p.mu.Lock()
	front, ok := p.pending.front()
	switch {
	case !ok || rc.sequenceID < front.seq:
		p.mu.Unlock()
		return nil
	case rc.sequenceID > front.seq:
		p.mu.Unlock()
		return fmt.Errorf("%w: producer %s: receipt for sequence id %d while %d awaits one", ErrConnection, p.name, rc.sequenceID, front.seq)
	}
	p.pending.pop()
	p.receipts++
	var drained chan struct{}
	if p.pending.len() == 0 && p.drained != nil {
		drained, p.drained = p.drained, nil
	}
	p.mu.Unlock()
	if drained != nil {
		close(drained)
	}
	front.complete(rc.ledgerID, rc.entryID, nil)
	return nil
}

// fail fails the producer for good with err, and every send pending.
func (p *Producer) fail(err error) {
	p.mu.Lock()
	if p.err != nil {
		p.mu.Unlock()
		return
	}
	p.err = fmt.Errorf("producer %s on %s: %w", p.name, p.topic, err)
	close(p.failed)
	pending := p.pending.drain()
	if p.drained != nil {
		close(p.drained)
		p.drained = nil
	}
	err = p.err
	p.mu.Unlock()
	for _, s := range pending {
		s.complete(0, 0, err)
	}
}

// checkReceipts returns an error when sends have been pending without any
// receipt for at least timeout (at the keeper's granularity).
func (p *Producer) checkReceipts(now time.Time, timeout time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pending.len() == 0 || p.receipts != p.seen || p.progress.IsZero() {
		p.seen, p.progress = p.receipts, now
		return nil
	}
	if now.Sub(p.progress) >= timeout {
		front, _ := p.pending.front()
		return fmt.Errorf("%w: producer %s: no receipt for %s (sequence id %d and %d more pending)",
			ErrConnection, p.name, now.Sub(p.progress).Round(time.Second), front.seq, p.pending.len()-1)
	}
	return nil
}

// Flush waits until every send made so far has its receipt, or the
// producer fails, or ctx ends.
func (p *Producer) Flush(ctx context.Context) error {
	p.mu.Lock()
	if p.err != nil {
		err := p.err
		p.mu.Unlock()
		return err
	}
	if p.pending.len() == 0 {
		p.mu.Unlock()
		return nil
	}
	if p.drained == nil {
		p.drained = make(chan struct{})
	}
	drained := p.drained
	p.mu.Unlock()
	select {
	case <-drained:
		return p.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close closes the producer on the broker (waiting for its answer at most
// the operation timeout) unless it failed already; sends still pending fail
// with ErrClosed.
func (p *Producer) Close() { p.closeWithin(p.conn.opts.OperationTimeout) }

func (p *Producer) closeWithin(timeout time.Duration) {
	// A producer that failed on a live connection (SEND_ERROR, a message too
	// large) is still registered on the broker: close it there too.
	if err := p.Err(); p.conn.alive() && !errors.Is(err, ErrClosedByBroker) && !errors.Is(err, ErrClosed) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		p.conn.request(ctx, func(id uint64) *wirev1.BaseCommand {
			return &wirev1.BaseCommand{
				Type:          wirev1.BaseCommand_CLOSE_PRODUCER.Enum(),
				CloseProducer: &wirev1.CommandCloseProducer{ProducerId: proto.Uint64(p.id), RequestId: proto.Uint64(id)},
			}
		})
		cancel()
	}
	p.conn.removeProducer(p)
	p.fail(ErrClosed)
}

// pendingSend is a send awaiting its receipt: one message (done), or a
// batch whose receipt carries its lowest sequence id.
type pendingSend struct {
	seq   uint64
	done  func(Receipt, error)
	batch []BatchMessage
}

// complete calls the send's callbacks: with the entry's position, or with
// err.
func (s pendingSend) complete(ledgerID, entryID int64, err error) {
	if s.batch == nil {
		r := Receipt{SequenceID: s.seq, BatchIndex: -1}
		if err == nil {
			r.LedgerID, r.EntryID = ledgerID, entryID
		}
		s.done(r, err)
		return
	}
	for i, m := range s.batch {
		r := Receipt{SequenceID: uint64(*m.Msg.SequenceID), BatchIndex: int32(i)}
		if err == nil {
			r.LedgerID, r.EntryID = ledgerID, entryID
		}
		m.Done(r, err)
	}
}

// queue is a FIFO of pending sends on a slice that is reused once it has
// emptied, so a steady stream of sends allocates nothing.
type queue struct {
	items []pendingSend
	head  int
}

func (q *queue) len() int { return len(q.items) - q.head }

func (q *queue) push(s pendingSend) {
	if q.head > 0 && q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	} else if q.head > len(q.items)/2 && q.head > 64 {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	q.items = append(q.items, s)
}

func (q *queue) front() (pendingSend, bool) {
	if q.len() == 0 {
		return pendingSend{}, false
	}
	return q.items[q.head], true
}

func (q *queue) pop() {
	q.items[q.head] = pendingSend{}
	q.head++
}

// drain empties the queue and returns what it held.
func (q *queue) drain() []pendingSend {
	s := q.items[q.head:]
	q.items, q.head = nil, 0
	return s
}
