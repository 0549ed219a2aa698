package relay

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/alpes/alpes/relay/pgsource"
	"github.com/alpes/alpes/relay/pulsarsend"
)

// publisher publishes one streaming session's messages: one producer per
// topic and epoch, named so the broker deduplicates across restarts, with a
// bound on messages awaiting receipts. Publish is called from one goroutine;
// receipts arrive on the connections' reading goroutines.
//
// Producers are the relay's own (pulsarsend): unbatched, one entry per
// message, so deduplication is exact per message (ADR 0008); no internal
// reconnect, so the first failed send ends the session, which streams again
// from the confirmed position; and each producer's handshake tells the
// broker's last sequence id under its name, which the relay checks against
// the stream (checkBrokerNotAhead).
type publisher struct {
	client    *pulsarsend.Client
	source    string
	identity  pgsource.Identity // of the source, when the session began
	stream    string            // streamToken(identity)
	producers map[producerKey]*pulsarsend.Producer
	slots     chan struct{} // in-flight capacity: a token per message awaiting its receipt

	failOnce sync.Once
	failed   chan struct{} // closed on the first failed send
	failErr  error

	stats *sourceStats
}

type producerKey struct {
	topic string
	epoch uint64
}

func newPublisher(client *pulsarsend.Client, source string, identity pgsource.Identity, maxInFlight int, stats *sourceStats) *publisher {
	return &publisher{
		stats:     stats,
		client:    client,
		source:    source,
		identity:  identity,
		stream:    streamToken(identity),
		producers: map[producerKey]*pulsarsend.Producer{},
		slots:     make(chan struct{}, maxInFlight),
		failed:    make(chan struct{}),
	}
}

// errPublishFailed wraps the first send that failed (its producer or
// connection failed); the session ends and the relay streams again from the
// confirmed position.
var errPublishFailed = errors.New("publishing failed")

// publish sends msg to topic under the producer of epoch, and calls done
// once msg is queued: with nil on the broker's receipt, or with the error
// that failed the send before it (the session then ends). When publish
// returns an error, done is not called. It blocks while maxInFlight
// messages await receipts.
func (p *publisher) publish(ctx context.Context, topic string, epoch uint64, msg *pulsar.ProducerMessage, done func(error)) error {
	prod, err := p.producer(ctx, topic, epoch)
	if err != nil {
		return err
	}
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-p.failed:
		return p.failErr
	}
	p.stats.inFlight.Add(1)
	err = prod.Send(msg, func(r pulsarsend.Receipt, err error) {
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
		done(nil)
	})
	if err != nil {
		err = fmt.Errorf("%w: topic %s, sequence id %d: %w", errPublishFailed, topic, *msg.SequenceID, err)
		p.fail(err)
		return err
	}
	return nil
}

func (p *publisher) fail(err error) {
	p.failOnce.Do(func() {
		p.failErr = err
		close(p.failed)
	})
}

// producer returns the producer for topic in epoch, creating it on first use.
// A new epoch's producer starts only once the previous one has flushed, so
// the two never interleave on a topic. A new producer is refused, and
// closed, when the broker is ahead of the stream (checkBrokerNotAhead).
func (p *publisher) producer(ctx context.Context, topic string, epoch uint64) (*pulsarsend.Producer, error) {
	key := producerKey{topic, epoch}
	if prod, ok := p.producers[key]; ok {
		return prod, nil
	}
	for k, old := range p.producers {
		if k.topic == topic && k.epoch < epoch {
			if err := old.Flush(ctx); err != nil {
				return nil, fmt.Errorf("flushing producer of epoch %d on %s: %w", k.epoch, topic, err)
			}
		}
	}
	name := producerName(p.source, p.stream, topic, epoch)
	prod, err := p.client.CreateProducer(ctx, topic, name)
	if err != nil {
		return nil, err
	}
	if err := p.checkBrokerNotAhead(topic, name, epoch, prod.LastSequenceID()); err != nil {
		prod.Close()
		return nil, err
	}
	p.producers[key] = prod
	return prod, nil
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
