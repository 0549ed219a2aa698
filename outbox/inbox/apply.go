package inbox

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/alpes/alpes/internal/tracing"
)

// insertInbox records a run of messages in the inbox in one statement and
// returns the ids that were new; the others were applied before.
const insertInbox = `
INSERT INTO inbox (event_id, topic, type, source_committed_at)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[])
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id`

const insertParked = `
INSERT INTO parked_messages (event_id, topic, type, properties, payload, reason)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (event_id) DO NOTHING`

// outcome counts what one committed transaction did.
type outcome struct {
	applied, skipped, duplicates, parked, deadLettered int
}

// handlerError is a handler's own failure at index at of the run given to
// applyTx: not a database fault, so the message is retried on its own.
type handlerError struct {
	at  int
	err error
}

func (e *handlerError) Error() string { return fmt.Sprintf("handler of message %d: %v", e.at, e.err) }
func (e *handlerError) Unwrap() error { return e.err }

// applyTx applies ds in one transaction and commits. It returns a
// *handlerError when a handler fails with an error of its own (or returns
// nil but leaves the transaction unusable: see applyConn.leftUsable), and
// any other error for a database fault; either way nothing was committed. The
// transaction costs two round trips besides its handlers' statements: BEGIN
// with the inbox insert, and the progress update with COMMIT (applyConn).
func (c *Consumer) applyTx(ctx context.Context, ds []*delivery) (outcome, error) {
	var out outcome
	begun := time.Now()
	ac, fresh, err := recordInInbox(ctx, c.cfg.DB, ds)
	if err != nil {
		return out, err
	}
	defer ac.release(ctx) // rolls back unless committed
	tx := ac.conn()
	applied := make([]*delivery, 0, len(ds))
	for i, d := range ds {
		if !fresh[d.eventID.Bytes] {
			out.duplicates++
			continue
		}
		delete(fresh, d.eventID.Bytes) // a second copy in the same run is a duplicate
		applied = append(applied, d)
		err := c.applyOne(ctx, tx, d, &out)
		if err == nil && d.disp == dispHandle {
			err = ac.leftUsable()
		}
		if err != nil {
			if isTransient(err) {
				return out, err
			}
			if d.disp == dispHandle {
				return out, &handlerError{at: i, err: err}
			}
			return out, err
		}
	}
	if c.beforeCommit != nil {
		if err := c.beforeCommit(); err != nil {
			return out, err
		}
	}
	if err := ac.commit(ctx, upsertProgress, progressArgs(applied)...); err != nil {
		return out, fmt.Errorf("recording progress and committing: %w", err)
	}
	c.latencies.observe(begun, time.Now(), ds, applied)
	return out, nil
}

// applyOne applies d, new to the inbox, within tx, in its consumer span
// when tracing is on, and counts it in out. A handler's error is returned
// as it is; applyTx tells it apart from a database fault.
func (c *Consumer) applyOne(ctx context.Context, tx Tx, d *delivery, out *outcome) (err error) {
	if c.tracer != nil {
		var span trace.Span
		ctx, span = c.startSpan(ctx, d)
		defer func() { endSpan(span, d, err) }()
	}
	switch d.disp {
	case dispHandle:
		if err := c.callHandler(ctx, tx, d); err != nil {
			return err
		}
		out.applied++
	case dispSkip:
		out.skipped++
	case dispPark, dispDeadLettered:
		if err := park(ctx, tx, d); err != nil {
			return err
		}
		if d.disp == dispPark {
			out.parked++
		} else {
			out.deadLettered++
		}
	}
	return nil
}

// startSpan begins d's consumer span, a child of the trace context in its
// properties (a root when it carries none).
func (c *Consumer) startSpan(ctx context.Context, d *delivery) (context.Context, trace.Span) {
	if d.msg.Raw != nil {
		ctx = tracing.Propagator.Extract(ctx, propagation.MapCarrier(d.msg.Raw.Properties()))
	}
	return c.tracer.Start(ctx, "process "+d.msg.Topic, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			tracing.MessagingSystem.String(tracing.PulsarSystem),
			tracing.MessagingOperation.String("process"),
			tracing.MessagingDestination.String(d.msg.Topic),
			tracing.MessagingConsumer.String(c.cfg.Subscription),
			tracing.MessagingMessageID.String(d.msg.EventID),
			tracing.MessagingKey.String(d.msg.AggregateID),
			tracing.EventType.String(d.msg.Type),
		))
}

// endSpan ends d's span with what became of it.
func endSpan(span trace.Span, d *delivery, err error) {
	outcome := "applied"
	switch d.disp {
	case dispSkip:
		outcome = "skipped"
	case dispPark:
		outcome = "parked"
	case dispDeadLettered:
		outcome = "dead-lettered"
	}
	span.SetAttributes(tracing.InboxOutcome.String(outcome))
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// recordInInbox begins the apply transaction of ds with the insert of their
// inbox rows, and returns it and the ids that were new.
func recordInInbox(ctx context.Context, db DB, ds []*delivery) (*applyConn, map[[16]byte]bool, error) {
	ids := make([]pgtype.UUID, len(ds))
	topics := make([]string, len(ds))
	types := make([]string, len(ds))
	committed := make([]pgtype.Timestamptz, len(ds))
	for i, d := range ds {
		ids[i], topics[i], types[i], committed[i] = d.eventID, d.msg.Topic, d.msg.Type, d.committedAt
	}
	ac, inserted, err := beginApply(ctx, db, pgx.RowTo[pgtype.UUID], insertInbox, ids, topics, types, committed)
	if err != nil {
		return nil, nil, fmt.Errorf("inserting into the inbox: %w", err)
	}
	fresh := make(map[[16]byte]bool, len(inserted))
	for _, id := range inserted {
		fresh[id.Bytes] = true
	}
	return ac, fresh, nil
}

// callHandler runs d's handler, turning a panic into an error so that one
// bad message is retried and dead-lettered instead of crashing the service.
func (c *Consumer) callHandler(ctx context.Context, tx Tx, d *delivery) (err error) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("handler panicked", "event_id", d.msg.EventID, "type", d.msg.Type,
				"panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panicked: %v", p)
		}
	}()
	return d.handle(ctx, tx, d.msg)
}

// park inserts d into parked_messages.
func park(ctx context.Context, tx Tx, d *delivery) error {
	props, err := json.Marshal(d.msg.Raw.Properties())
	if err != nil {
		return fmt.Errorf("encoding properties: %w", err)
	}
	payload := d.msg.Raw.Payload()
	if payload == nil {
		payload = []byte{}
	}
	if _, err := tx.Exec(ctx, insertParked, d.eventID, d.msg.Topic, d.msg.Type, props, payload, d.reason); err != nil {
		return fmt.Errorf("parking %s: %w", d.msg.EventID, err)
	}
	return nil
}
