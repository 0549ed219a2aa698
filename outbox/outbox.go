// Package outbox appends a service's messages to its transactional outbox
// (docs/adr/0005-outbox-and-cleanup.md): inside the transaction that changes
// the service's state, so the message exists if and only if the change does.
// The relay publishes the rows; nothing here talks to Pulsar.
package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

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
	// Headers are extra properties, such as W3C trace context (traceparent).
	Headers map[string]string
	// EventID is the message's id; empty means a new UUIDv7 (time-ordered,
	// kind to the outbox's primary key index).
	EventID string
}

// Append inserts msg into the outbox within tx and returns its event id. It
// must be called inside the transaction that makes the change msg describes.
func Append(ctx context.Context, tx Execer, msg Message) (string, error) {
	id, args, err := insertArgs(msg)
	if err != nil {
		return "", err
	}
	if _, err := tx.Exec(ctx, schema.InsertOutbox, args...); err != nil {
		return "", fmt.Errorf("appending to the outbox: %w", err)
	}
	return id, nil
}

// Queue queues msg's insert on b and returns its event id. Either b is sent
// within the transaction that makes the change msg describes, or b carries
// that change's statements and is sent on its own: pgx runs a batch sent
// outside a transaction as one implicit transaction, so a failing statement
// undoes them all. A batch costs one round trip, where Append costs one per
// statement (plus BEGIN and COMMIT when it is the whole transaction).
func Queue(b *pgx.Batch, msg Message) (string, error) {
	id, args, err := insertArgs(msg)
	if err != nil {
		return "", err
	}
	b.Queue(schema.InsertOutbox, args...)
	return id, nil
}

// insertArgs returns msg's event id and the arguments of schema.InsertOutbox.
func insertArgs(msg Message) (string, []any, error) {
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
	headers := []byte("{}")
	if len(msg.Headers) > 0 {
		if headers, err = json.Marshal(msg.Headers); err != nil {
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
