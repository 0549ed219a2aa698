package relay

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"sync/atomic"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/alpes/alpes/internal/failpoint"
	"github.com/alpes/alpes/relay/pgsource"
	"github.com/alpes/alpes/relay/pulsarsend"
)

// publisher publishes one streaming session's messages: one producer per
// topic, lane and epoch, named so the broker deduplicates across restarts,
// with a bound on messages awaiting receipts. Publish and flush are called
// from one goroutine; receipts arrive on the connections' reading
// goroutines.
//
// Producers are the relay's own (pulsarsend), and batch (docs/adr/0008):
// each gathers the messages published to it into one entry. The pipeline
// flushes (flushIdle) whenever the stream has nothing more ready: a producer
// with nothing awaiting a receipt sends its batch then, so a message that
// arrives alone goes at once; a producer whose previous entry still awaits
// its receipt keeps gathering until the receipt comes (ready), so under load
// batches grow to what arrives in a round trip to the broker. A batch also
// goes when it is full, and every open batch when the in-flight bound needs
// the slots they hold (flush).
// A message whose sequence id is at or below the broker's last id under the
// producer's name (its handshake's) may be on the broker already, and goes
// in an entry of its own: a batch that reached from such an id to new ones
// would be dropped whole as a duplicate. No producer reconnects, so the
// first failed send ends the session, which streams again from the
// confirmed position; and each handshake's last id is also checked against
// the stream (checkBrokerNotAhead).
type publisher struct {
	client    *pulsarsend.Client
	source    string
	identity  pgsource.Identity // of the source, when the session began
	stream    string            // streamToken(identity)
	producers map[producerKey]*laneProducer
	open      []*laneProducer // producers holding a batch not yet sent
	slots     chan struct{}   // in-flight capacity: a token per message awaiting its receipt
	ready     chan struct{}   // a held batch's producer has had its receipts (flushIdle)

	unreceipted atomic.Int64 // messages sent in entries and awaiting receipts

	maxMessageBytes int            // the broker's largest entry (SourceConfig.MaxMessageBytes)
	failpoints      *failpoint.Set // relay/before-send and relay/after-send, around each entry

	failOnce sync.Once
	failed   chan struct{} // closed on the first failed send
	failErr  error

	stats *sourceStats
}

type producerKey struct {
	topic string
	lane  int
	epoch uint64
}

// laneProducer is a producer and the batch it is gathering.
type laneProducer struct {
	*pulsarsend.Producer
	topic    string
	last     int64 // the broker's last sequence id under the name, at the handshake
	batch    []pulsarsend.BatchMessage
	bytes    int  // the batch's messages' sizes, as messageSize counts them
	maxBytes int  // what they may add up to: the entry's metadata comes on top
	listed   bool // on the publisher's open list

	unreceipted atomic.Int64 // messages sent in entries and awaiting receipts
	held        atomic.Bool  // the batch waits for them: the last receipt signals ready
}

// Batch bounds: pulsar-client-go's defaults (1,000 messages, 128 KiB).
const (
	maxBatchMessages = 1000
	maxBatchBytes    = 128 << 10
)

func newPublisher(client *pulsarsend.Client, source string, identity pgsource.Identity, maxInFlight, maxMessageBytes int, stats *sourceStats) *publisher {
	return &publisher{
		stats:           stats,
		client:          client,
		source:          source,
		identity:        identity,
		stream:          streamToken(identity),
		producers:       map[producerKey]*laneProducer{},
		slots:           make(chan struct{}, maxInFlight),
		ready:           make(chan struct{}, 1),
		maxMessageBytes: maxMessageBytes,
		failed:          make(chan struct{}),
	}
}

// errPublishFailed wraps the first send that failed (its producer or
// connection failed); the session ends and the relay streams again from the
// confirmed position.
var errPublishFailed = errors.New("publishing failed")

// publish queues msg for topic under the producer of lane and epoch, and
// calls done once msg is receipted (with nil), or with the error that failed
// its send before (the session then ends). msg is sent with its producer's
// batch, by a flush; size is msg's size as
// messageSize counts it (pipeline.encode's), which bounds the batch. When
// publish returns an error, done is not called. It blocks while
// maxInFlight messages await receipts.
func (p *publisher) publish(ctx context.Context, topic string, lane int, epoch uint64, msg *pulsar.ProducerMessage, size int, done func(error)) error {
	prod, err := p.producer(ctx, topic, lane, epoch)
	if err != nil {
		return err
	}
	select {
	case p.slots <- struct{}{}:
	default:
		// Every slot is taken. While sent messages await receipts, one of
		// those frees a slot. When none does, the slots are all held by
		// messages in open batches, whose receipts cannot come before they
		// are sent: send them. (Sending them whenever the slots are full
		// would, under a slow broker, send every later message alone.)
		if p.unreceipted.Load() == 0 {
			if err := p.flush(); err != nil {
				return err
			}
		}
		select {
		case p.slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		case <-p.failed:
			return p.failErr
		}
	}
	p.stats.inFlight.Add(1)
	receipted := func(r pulsarsend.Receipt, err error) {
		if err != nil {
			err = fmt.Errorf("%w: topic %s, sequence id %d: %w", errPublishFailed, topic, r.SequenceID, err)
			p.fail(err)
			done(err)
			return
		}
		if r.Duplicate() {
			p.stats.duplicates.Add(1)
		} else {
			p.stats.published.Add(1)
		}
		p.stats.inFlight.Add(-1)
		<-p.slots
		p.unreceipted.Add(-1)
		if prod.unreceipted.Add(-1) == 0 && prod.held.CompareAndSwap(true, false) {
			select {
			case p.ready <- struct{}{}:
			default: // a signal is pending already
			}
		}
		done(nil)
	}
	if *msg.SequenceID <= prod.last {
		// Perhaps on the broker already: alone, to be judged alone. The
		// producer's batch is empty, since ids grow, and a batch of one is
		// sent as a single message.
		prod.batch = append(prod.batch, pulsarsend.BatchMessage{Msg: msg, Done: receipted})
		return p.send(prod)
	}
	if len(prod.batch) > 0 && (len(prod.batch) >= maxBatchMessages || prod.bytes+size > prod.maxBytes) {
		if err := p.send(prod); err != nil {
			return err
		}
	}
	if !prod.listed {
		p.open, prod.listed = append(p.open, prod), true
	}
	prod.batch = append(prod.batch, pulsarsend.BatchMessage{Msg: msg, Done: receipted})
	prod.bytes += size
	return nil
}

// flush sends every open batch.
func (p *publisher) flush() error {
	for _, prod := range p.open {
		prod.listed = false
		prod.held.Store(false)
		if err := p.send(prod); err != nil {
			return err
		}
	}
	clear(p.open)
	p.open = p.open[:0]
	return nil
}

// flushIdle sends the open batches of the producers with nothing awaiting a
// receipt, and holds the others' until their receipts have come: the last
// of them signals ready, and the pipeline calls flushIdle again.
func (p *publisher) flushIdle() error {
	keep := p.open[:0]
	for _, prod := range p.open {
		if len(prod.batch) == 0 {
			prod.listed = false
			continue
		}
		// Set before the count is read: a receipt that brings it to zero
		// after the read finds the flag and signals.
		prod.held.Store(true)
		if prod.unreceipted.Load() > 0 {
			keep = append(keep, prod)
			continue
		}
		prod.held.Store(false)
		prod.listed = false
		if err := p.send(prod); err != nil {
			return err
		}
	}
	clear(p.open[len(keep):])
	p.open = keep
	return nil
}

// send sends prod's batch, if any, and starts a new one. It does not take
// prod off the open list: flush and flushIdle do, and a producer left on it
// with an empty batch sends nothing.
func (p *publisher) send(prod *laneProducer) error {
	batch := prod.batch
	if len(batch) == 0 {
		return nil
	}
	// The batch belongs to the producer until its receipt: the next one
	// starts on a slice of its own.
	prod.batch, prod.bytes = nil, 0
	p.stats.entries.Add(1)
	prod.unreceipted.Add(int64(len(batch)))
	p.unreceipted.Add(int64(len(batch)))
	p.failpoints.Hit("relay/before-send")
	err := prod.SendBatch(batch)
	p.failpoints.Hit("relay/after-send")
	if err != nil {
		// It could not be queued: the session ends.
		err = fmt.Errorf("%w: topic %s, sequence id %d: %w", errPublishFailed, prod.topic, *batch[0].Msg.SequenceID, err)
		p.fail(err)
	}
	return err
}

func (p *publisher) fail(err error) {
	p.failOnce.Do(func() {
		p.failErr = err
		close(p.failed)
	})
}

// producer returns the producer for topic in lane and epoch. The first
// message to a topic in an epoch opens the topic: every lane's producer (see
// openTopic).
func (p *publisher) producer(ctx context.Context, topic string, lane int, epoch uint64) (*laneProducer, error) {
	if prod, ok := p.producers[producerKey{topic, lane, epoch}]; ok {
		return prod, nil
	}
	if err := p.openTopic(ctx, topic, epoch); err != nil {
		return nil, err
	}
	return p.producers[producerKey{topic, lane, epoch}], nil
}

// openTopic creates the producers of every lane of topic in epoch, and
// checks each handshake's last id against the stream before any message
// goes to the topic: the broker may be ahead of the stream in any lane, and
// the source stops before publishing (checkBrokerNotAhead). A new epoch's
// producers start only once the previous epoch's have sent their batches
// and flushed, so the two never interleave on a lane. The first handshake
// goes alone, so that the others share the connection it made.
func (p *publisher) openTopic(ctx context.Context, topic string, epoch uint64) error {
	for k, old := range p.producers {
		if k.topic == topic && k.epoch < epoch {
			if err := p.send(old); err != nil {
				return err
			}
			if err := old.Flush(ctx); err != nil {
				return fmt.Errorf("flushing producer of epoch %d on %s: %w", k.epoch, topic, err)
			}
		}
	}
	var created [laneCount]*pulsarsend.Producer
	var errs [laneCount]error
	create := func(lane int) {
		created[lane], errs[lane] = p.client.CreateProducer(ctx, topic, producerName(p.source, p.stream, topic, lane, epoch))
	}
	create(0)
	if errs[0] == nil {
		var wg sync.WaitGroup
		for lane := 1; lane < laneCount; lane++ {
			wg.Go(func() { create(lane) })
		}
		wg.Wait()
	}
	var err error
	for lane, prod := range created {
		if err == nil {
			err = errs[lane] // the first lane's error: the others' are alike
		}
		if err == nil {
			err = p.checkBrokerNotAhead(topic, prod.Name(), epoch, prod.LastSequenceID())
		}
	}
	if err != nil {
		for _, prod := range created {
			if prod != nil {
				prod.Close()
			}
		}
		return err
	}
	for lane, prod := range created {
		p.producers[producerKey{topic, lane, epoch}] = &laneProducer{
			Producer: prod, topic: topic, last: prod.LastSequenceID(),
			// Each message's size counts metadata of its own, more than
			// its place in a batch takes; the batch's metadata, with the
			// producer name, comes on top.
			maxBytes: min(maxBatchBytes, p.maxMessageBytes-metadataSlack-bytesField(len(prod.Name()))),
		}
	}
	return nil
}

// ErrStreamBehindBroker is wrapped by the error that stops a source when the
// broker already holds, under one of the source's producer names, an event
// from further in the stream than the source has ever written.
var ErrStreamBehindBroker = errors.New("the source's stream is behind what the broker holds")

// streamBehindError says which producer's state is ahead of the source.
type streamBehindError struct {
	source, topic, producer string
	identity                pgsource.Identity
	brokerLSN               pgsource.LSN
}

func (e *streamBehindError) Error() string {
	return fmt.Sprintf("the broker holds an event of producer %s on %s committed at %s, but source %s (%s) has written WAL only up to %s: "+
		"the source was rewound (a restored disk snapshot or backup) or another deployment publishes under the same source name; "+
		"what the relay published now would be dropped as duplicates, so it publishes nothing. "+
		"If the source really was restored, run it under a new source name with its slot kept",
		e.producer, e.topic, e.brokerLSN, e.source, e.identity, e.identity.WALFlush)
}

func (e *streamBehindError) Unwrap() error { return ErrStreamBehindBroker }

// checkBrokerNotAhead refuses to go on when last, the last sequence id the
// broker holds under name (from the producer's handshake), stands for a
// commit at or past the source's WAL flush position when the session began:
// no transaction of this stream can have committed there, so the broker's
// state comes from another stream that borrowed this one's identity, and
// every event sent now below that id would be dropped. Ids below the
// position are the normal state after a restart (events published but not
// confirmed come again, and are dropped as the duplicates they are).
func (p *publisher) checkBrokerNotAhead(topic, name string, epoch uint64, last int64) error {
	if last < 0 {
		return nil
	}
	if lsn := commitLSNOf(last, epoch); lsn >= p.identity.WALFlush {
		return &streamBehindError{source: p.source, topic: topic, producer: name, identity: p.identity, brokerLSN: lsn}
	}
	return nil
}

// close closes every producer, at once; messages still awaiting receipts
// are abandoned, to be streamed again from the confirmed position.
func (p *publisher) close() {
	var wg sync.WaitGroup
	for _, prod := range p.producers {
		wg.Go(prod.Close)
	}
	wg.Wait()
}

// topicName matches the topics the relay publishes to:
// persistent://<tenant>/<namespace>/<topic> (or non-persistent).
var topicName = regexp.MustCompile(`^(persistent|non-persistent)://[a-zA-Z0-9_.\-=:]+/[a-zA-Z0-9_.\-=:]+/[a-zA-Z0-9_.\-=:]+$`)

// validTopic reports whether topic is a fully qualified Pulsar topic name.
func validTopic(topic string) bool { return topicName.MatchString(topic) }

// topicCache remembers the topics already found valid, so that a stream of
// rows for a few topics runs the regular expression once per topic rather
// than once per row. It holds at most maxCachedTopics names; past that, the
// others are checked every time. The zero value is ready; it is not safe for
// concurrent use.
type topicCache struct{ known map[string]struct{} }

const maxCachedTopics = 1024

func (c *topicCache) valid(topic string) bool {
	if _, ok := c.known[topic]; ok {
		return true
	}
	if !validTopic(topic) {
		return false
	}
	if c.known == nil {
		c.known = map[string]struct{}{}
	}
	if len(c.known) < maxCachedTopics {
		c.known[topic] = struct{}{}
	}
	return true
}
