// Package outbox appends a service's messages to its transactional outbox
// (docs/adr/0005-outbox-and-cleanup.md): inside the transaction that changes
// the service's state, so the message exists if and only if the change does.
// The relay publishes the rows; nothing here talks to Pulsar.
//
// A Writer traces every append and carries the trace onward: the W3C trace
// context of the span it makes (or, with tracing off, of the span in the
// caller's context) goes into the row's headers, which the relay turns into
// message properties, so the consumer's work continues the same trace.
package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/alpes/alpes/internal/tracing"
	"github.com/alpes/alpes/outbox/schema"
)

// Execer is what Append needs of a transaction; pgx.Tx satisfies it.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

var _ Execer = (pgx.Tx)(nil)

// Message is one message to publish.
type Message struct {
	// Topic is the full Pulsar topic, one of the deployment tenant's
	// eventcatalog.Topics, e.g. its OrderEvents.
	Topic string
	// AggregateID is the Pulsar key: messages with the same one keep their order.
	AggregateID string
	// Body is the protobuf message; its full name becomes alpes-type.
	Body proto.Message
	// Headers are extra properties, such as a request id. The writer adds
	// the W3C trace context (traceparent, tracestate) from its context,
	// replacing any given here.
	Headers map[string]string
	// EventID is the message's id; empty means a new UUIDv7 (time-ordered,
	// kind to the outbox's primary key index).
	EventID string
}

// Writer appends messages to the outbox, each within a span of its own,
// "outbox append <type>" (internal kind, a child of the span in the
// caller's context), whose W3C trace context it writes into the row's
// headers. With tracing off it makes no span and writes the trace context
// of the caller's span, when there is a valid one. The zero value traces
// nothing; a Writer is safe for concurrent use.
type Writer struct {
	tracer trace.Tracer // nil: tracing off
}

// NewWriter returns a Writer whose spans go to tp; a nil or no-op tp traces
// nothing.
func NewWriter(tp trace.TracerProvider) Writer { return Writer{tracer: tracing.Tracer(tp)} }

// Append inserts msg into the outbox within tx and returns its event id. It
// must be called inside the transaction that makes the change msg
// describes; its span covers the insert.
func (w Writer) Append(ctx context.Context, tx Execer, msg Message) (string, error) {
	ctx, span := w.start(ctx, msg)
	id, args, err := insertArgs(ctx, msg)
	if err == nil {
		if _, err = tx.Exec(ctx, schema.InsertOutbox, args...); err != nil {
			err = fmt.Errorf("appending to the outbox: %w", err)
		}
	}
	end(span, id, err)
	if err != nil {
		return "", err
	}
	return id, nil
}

// Queue queues msg's insert on b and returns its event id. Either b is sent
// within the transaction that makes the change msg describes, or b carries
// that change's statements and is sent on its own: pgx runs a batch sent
// outside a transaction as one implicit transaction, so a failing statement
// undoes them all. A batch costs one round trip, where Append costs one per
// statement (plus BEGIN and COMMIT when it is the whole transaction). Its
// span covers the encoding only: the insert runs when b is sent, within the
// caller's span.
func (w Writer) Queue(ctx context.Context, b *pgx.Batch, msg Message) (string, error) {
	ctx, span := w.start(ctx, msg)
	id, args, err := insertArgs(ctx, msg)
	end(span, id, err)
	if err != nil {
		return "", err
	}
	b.Queue(schema.InsertOutbox, args...)
	return id, nil
}

// start begins msg's span when w traces; otherwise it returns ctx as it is
// and a nil span.
func (w Writer) start(ctx context.Context, msg Message) (context.Context, trace.Span) {
	if w.tracer == nil {
		return ctx, nil
	}
	typ := "unknown"
	if msg.Body != nil {
		typ = string(msg.Body.ProtoReflect().Descriptor().FullName())
	}
	return w.tracer.Start(ctx, "outbox append "+typ, trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(tracing.MessagingDestination.String(msg.Topic), tracing.MessagingKey.String(msg.AggregateID),
			tracing.EventType.String(typ)))
}

// end ends span, when there is one, with the event id or the error.
func end(span trace.Span, id string, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	} else {
		span.SetAttributes(tracing.MessagingMessageID.String(id))
	}
	span.End()
}

// Append is Writer.Append without tracing: the row carries the trace
// context of the span in ctx, if any, and no span is made.
func Append(ctx context.Context, tx Execer, msg Message) (string, error) {
	return Writer{}.Append(ctx, tx, msg)
}

// Queue is Writer.Queue without a context: the row carries no trace
// context. Services use a Writer; this is for tools that write outbox rows
// outside any trace (the benchmarks).
func Queue(b *pgx.Batch, msg Message) (string, error) {
	return Writer{}.Queue(context.Background(), b, msg)
}

// insertArgs returns msg's event id and the arguments of schema.InsertOutbox,
// with the trace context of ctx's span in the headers when it is valid.
func insertArgs(ctx context.Context, msg Message) (string, []any, error) {
	if msg.Topic == "" || msg.AggregateID == "" || msg.Body == nil {
		return "", nil, fmt.Errorf("outbox message needs a topic, an aggregate id and a body")
	}
	desc := msg.Body.ProtoReflect().Descriptor()
	payload, err := proto.Marshal(msg.Body)
	if err != nil {
		return "", nil, fmt.Errorf("encoding %s: %w", desc.FullName(), err)
	}
	id := msg.EventID
	if id == "" {
		u, err := uuid.NewV7()
		if err != nil {
			return "", nil, fmt.Errorf("minting an event id: %w", err)
		}
		id = u.String()
	}
	h := msg.Headers
	if trace.SpanContextFromContext(ctx).IsValid() {
		h = make(map[string]string, len(msg.Headers)+2)
		for k, v := range msg.Headers {
			h[k] = v
		}
		tracing.Propagator.Inject(ctx, propagation.MapCarrier(h))
	}
	headers := []byte("{}")
	if len(h) > 0 {
		if headers, err = json.Marshal(h); err != nil {
			return "", nil, fmt.Errorf("encoding headers: %w", err)
		}
	}
	return id, []any{id, msg.Topic, msg.AggregateID, string(desc.FullName()), schemaVersion(desc), payload, headers}, nil
}

// schemaVersion is the major version of the message's package: the N of a
// trailing ".vN" in alpes.orders.v1, else 1. It is parsed once per package.
func schemaVersion(desc protoreflect.MessageDescriptor) int {
	pkg := desc.ParentFile().Package()
	if v, ok := schemaVersions.Load(pkg); ok {
		return v.(int)
	}
	v := parseSchemaVersion(string(pkg))
	schemaVersions.Store(pkg, v)
	return v
}

// schemaVersions caches schemaVersion by protobuf package; a process knows
// a handful of packages.
var schemaVersions sync.Map // protoreflect.FullName → int

func parseSchemaVersion(pkg string) int {
	var v int
	for i := len(pkg) - 1; i >= 0; i-- {
		if pkg[i] == '.' {
			if _, err := fmt.Sscanf(pkg[i+1:], "v%d", &v); err == nil && v > 0 {
				return v
			}
			break
		}
	}
	return 1
}
