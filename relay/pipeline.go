package relay

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/alpes/alpes/internal/tracing"
	"github.com/alpes/alpes/outbox/eventmeta"
	"github.com/alpes/alpes/relay/pgsource"
)

// pipeline turns the stream's changes into Pulsar messages, in stream order,
// and feeds the tracker. It runs on one goroutine.
type pipeline struct {
	source  *sourceRunner
	pub     *publisher
	tracker *tracker
	dedup   *dedupGuard // verifies each topic before its first message

	tx    *txState
	begin *pgsource.Begin
	index int64 // rows so far in the open transaction, over all topics

	// The open transaction's commit LSN and time as message properties:
	// formatted once per transaction, not once per row.
	commitLSN, commitTime string

	topics topicCache
}

func (p *pipeline) run(ctx context.Context, changes <-chan []pgsource.Change) error {
	for {
		var batch []pgsource.Change
		select {
		case batch = <-changes:
		default:
			// Nothing more has arrived: the open batches go now, unless
			// their producer's previous entry still awaits its receipt.
			if err := p.pub.flushIdle(); err != nil {
				return err
			}
			select {
			case batch = <-changes:
			case <-p.pub.ready:
				continue // a held batch may go now
			case <-ctx.Done():
				return ctx.Err()
			case <-p.pub.failed:
				return p.pub.failErr
			}
		}
		for _, c := range batch {
			if err := p.handle(ctx, c); err != nil {
				return err
			}
		}
	}
}

func (p *pipeline) handle(ctx context.Context, c pgsource.Change) error {
	switch c := c.(type) {
	case *pgsource.Begin:
		p.tx = p.tracker.begin(c.CommitLSN, c.CommitTime)
		p.openTx(c)
	case *pgsource.Row:
		if p.tx == nil {
			return fmt.Errorf("outbox row outside a transaction")
		}
		return p.row(ctx, c)
	case *pgsource.Commit:
		if p.tx == nil {
			return fmt.Errorf("commit at %s without a begin", c.CommitLSN)
		}
		p.tracker.seal(p.tx, c.EndLSN)
		p.source.stats.observeCommit(c.CommitTime)
		p.tx, p.begin = nil, nil
	case *pgsource.Keepalive:
		p.tracker.idle(c.ServerWALEnd)
	}
	return nil
}

// openTx makes c the open transaction whose rows encode encodes.
func (p *pipeline) openTx(c *pgsource.Begin) {
	p.begin = c
	p.commitLSN = c.CommitLSN.String()
	p.commitTime = formatTime(c.CommitTime)
	p.index = 0
}

// row publishes one outbox row, or quarantines it when it cannot be
// published as it is: the stream must never stall on one bad row.
func (p *pipeline) row(ctx context.Context, row *pgsource.Row) error {
	topic, epoch, msg, size, err := p.encode(row)
	if err != nil {
		return err
	}
	if err := p.dedup.check(ctx, topic); err != nil {
		return err
	}
	tx := p.tx
	p.tracker.add(tx)
	fp := p.source.relay.Failpoints
	done := func(err error) {
		if err != nil {
			return // the session ends: the row is streamed again
		}
		p.tracker.receipted(tx)
		p.source.stats.lastPublish.Store(time.Now().UnixNano())
		fp.Hit("relay/after-receipt")
	}
	done, span := p.traceSend(ctx, row, topic, msg, done)
	err = p.pub.publish(ctx, topic, laneOf(row.AggregateID), epoch, msg, size, done)
	if err != nil && span != nil {
		endSend(span, err)
	}
	return err
}

// traceSend, when the relay traces, begins msg's producer span, a child of
// the trace context in row's headers, writes the span's trace context into
// msg's properties, and returns done wrapped to end the span with the
// send's outcome, and the span. When it does not trace it returns done as
// it is and a nil span, at no cost: the per-message path allocates nothing
// for tracing then.
func (p *pipeline) traceSend(ctx context.Context, row *pgsource.Row, topic string, msg *pulsar.ProducerMessage, done func(error)) (func(error), trace.Span) {
	tracer := p.source.relay.tracer
	if tracer == nil {
		return done, nil
	}
	if len(row.Headers) > 0 {
		ctx = tracing.Propagator.Extract(ctx, propagation.MapCarrier(row.Headers))
	}
	ctx, span := tracer.Start(ctx, "send "+topic, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			tracing.MessagingSystem.String(tracing.PulsarSystem),
			tracing.MessagingOperation.String("send"),
			tracing.MessagingDestination.String(topic),
			tracing.MessagingMessageID.String(row.EventID),
			tracing.MessagingKey.String(row.AggregateID),
			tracing.EventType.String(row.Type),
		))
	tracing.Propagator.Inject(ctx, propagation.MapCarrier(msg.Properties))
	return func(err error) {
		endSend(span, err)
		done(err)
	}, span
}

// endSend ends a producer span with the send's outcome.
func endSend(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// encode builds the Pulsar message of one row of the open transaction: its
// topic (the quarantine topic when the row cannot be published as it is),
// the epoch of the producer that must send it, the message with its
// sequence id, and the message's size as messageSize counts it. The id comes from the row's place among all the
// transaction's rows, before and whatever the quarantine decision: a relay
// that decides otherwise after a restart (a new validation, another size
// limit) still sends every row under the id it had (see sequence.go).
func (p *pipeline) encode(row *pgsource.Row) (topic string, epoch uint64, msg *pulsar.ProducerMessage, size int, err error) {
	index := p.index
	p.index++
	seq, epoch, err := position{commitLSN: p.begin.CommitLSN, index: index}.sequenceID()
	if err != nil {
		return "", 0, nil, 0, err
	}
	msg = eventMessage(row, p.commitLSN, p.commitTime, p.begin.CommitTime)
	msg.SequenceID = &seq
	topic = row.Topic
	reason, size := p.check(row, msg)
	if reason != "" {
		topic = p.source.cfg.QuarantineTopic
		p.source.stats.quarantined.Add(1)
		p.source.log.Warn("quarantining outbox row", "event_id", row.EventID, "topic", row.Topic, "type", row.Type, "reason", reason)
		p.quarantine(row, msg, reason)
		size = messageSize(msg, producerNameLen(p.source.cfg.Name, topic))
	}
	return topic, epoch, msg, size, nil
}

// eventMessage is the Pulsar message of an outbox row: its payload byte for
// byte, keyed by aggregate id and routed by the aggregate's lane (its
// ordering key, see lanes.go), with the properties of docs/adr/0006 (the
// row's headers, such as trace context, first, so ours win on a clash).
// commitLSN is empty for a replayed row; commitTimeText is
// formatTime(commitTime).
func eventMessage(row *pgsource.Row, commitLSN, commitTimeText string, commitTime time.Time) *pulsar.ProducerMessage {
	// Room for the headers and our six properties. A row with one header (a
	// traceparent) then fits Go's smallest map, eight entries in one group:
	// 336 bytes, against 664 for a hint of 9 (Go 1.26, amd64). It matters
	// because the client holds every message until its receipt. The rare
	// quarantined row grows its map.
	props := make(map[string]string, len(row.Headers)+6)
	for k, v := range row.Headers {
		props[k] = v
	}
	props[eventmeta.EventID] = row.EventID
	props[eventmeta.Type] = row.Type
	props[eventmeta.SchemaVersion] = strconv.Itoa(int(max(row.SchemaVersion, 1)))
	props[eventmeta.AggregateID] = row.AggregateID
	if commitLSN != "" {
		props[eventmeta.CommitLSN] = commitLSN
	}
	props[eventmeta.CommitTime] = commitTimeText
	payload := row.Payload
	if payload == nil {
		payload = []byte{}
	}
	return &pulsar.ProducerMessage{
		Payload:     payload,
		Key:         row.AggregateID,
		OrderingKey: laneKeys[laneOf(row.AggregateID)],
		Properties:  props,
		EventTime:   commitTime,
	}
}

// formatTime is how a commit time is written in a message property.
func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
