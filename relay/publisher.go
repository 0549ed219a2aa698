package relay

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/alpes/alpes/relay/pgsource"
)

// publisher publishes one streaming session's messages: one producer per
// topic and epoch, named so the broker deduplicates across restarts, with a
// bound on messages awaiting receipts. Publish is called from one goroutine;
// receipts arrive on the Pulsar client's goroutines.
//
// Producers send unbatched. With batching, the Go client sends a batch under
// its first message's sequence id, so a batch mixing a re-sent message with
// new ones after a restart would be dropped whole as a duplicate; and the
// client does not expose the broker's last sequence id to skip re-sends
// itself. One entry per message keeps deduplication exact.
type publisher struct {
	client    pulsar.Client
	source    string
	identity  pgsource.Identity // of the source, when the session began
	stream    string            // streamToken(identity)
	probe     *sequenceProbe    // nil: trust the broker's state unchecked
	producers map[producerKey]pulsar.Producer
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

func newPublisher(client pulsar.Client, source string, identity pgsource.Identity, probe *sequenceProbe, maxInFlight int, stats *sourceStats) *publisher {
	return &publisher{
		stats:     stats,
		client:    client,
		source:    source,
		identity:  identity,
		stream:    streamToken(identity),
		probe:     probe,
		producers: map[producerKey]pulsar.Producer{},
		slots:     make(chan struct{}, maxInFlight),
		failed:    make(chan struct{}),
	}
}

// errPublishFailed wraps the first send the Pulsar client gave up on; the
// session ends and the relay streams again from the confirmed position.
var errPublishFailed = errors.New("publishing failed")

// publish sends msg to topic under the producer of epoch, and calls done with
// the broker's receipt. It blocks while maxInFlight messages await receipts.
func (p *publisher) publish(ctx context.Context, topic string, epoch uint64, msg *pulsar.ProducerMessage, done func()) error {
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
	prod.SendAsync(ctx, msg, func(id pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
		if err != nil {
			p.fail(fmt.Errorf("%w: topic %s, sequence id %d: %w", errPublishFailed, topic, *msg.SequenceID, err))
			return
		}
		if id.LedgerID() == -1 && id.EntryID() == -1 {
			p.stats.duplicates.Add(1)
		} else {
			p.stats.published.Add(1)
		}
		p.stats.inFlight.Add(-1)
		<-p.slots
		done()
	})
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
// the two never interleave on a topic.
func (p *publisher) producer(ctx context.Context, topic string, epoch uint64) (pulsar.Producer, error) {
	key := producerKey{topic, epoch}
	if prod, ok := p.producers[key]; ok {
		return prod, nil
	}
	for k, old := range p.producers {
		if k.topic == topic && k.epoch < epoch {
			if err := old.FlushWithCtx(ctx); err != nil {
				return nil, fmt.Errorf("flushing producer of epoch %d on %s: %w", k.epoch, topic, err)
			}
		}
	}
	name := producerName(p.source, p.stream, topic, epoch)
	if err := p.checkBrokerNotAhead(ctx, topic, name, epoch); err != nil {
		return nil, err
	}
	prod, err := p.client.CreateProducer(pulsar.ProducerOptions{
		Topic:              topic,
		Name:               name,
		DisableBatching:    true,
		SendTimeout:        -1, // keep retrying: the in-flight bound and the lag report cover an absent broker
		MaxPendingMessages: cap(p.slots),
	})
	if err != nil {
		return nil, fmt.Errorf("creating producer %s on %s: %w", name, topic, err)
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

// checkBrokerNotAhead asks the broker for the last sequence id it holds
// under name, and refuses to go on when it stands for a commit at or past
// the source's WAL flush position when the session began: no transaction
// of this stream can have committed there, so the broker's state comes from
// another stream that borrowed this one's identity, and every event sent
// now below that id would be dropped. Ids below the position are the normal
// state after a restart (events published but not confirmed come again, and
// are dropped as the duplicates they are).
func (p *publisher) checkBrokerNotAhead(ctx context.Context, topic, name string, epoch uint64) error {
	if p.probe == nil {
		return nil
	}
	last, err := p.probe.lastSequenceID(ctx, topic, name)
	if err != nil {
		return err
	}
	if last < 0 {
		return nil
	}
	if lsn := commitLSNOf(last, epoch); lsn >= p.identity.WALFlush {
		return &streamBehindError{source: p.source, topic: topic, producer: name, identity: p.identity, brokerLSN: lsn}
	}
	return nil
}

// close closes every producer; messages still awaiting receipts are
// abandoned, to be streamed again from the confirmed position.
func (p *publisher) close() {
	for _, prod := range p.producers {
		prod.Close()
	}
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
