// Package outbox appends a service's messages to its transactional outbox
// (docs/adr/0005-outbox-and-cleanup.md): inside the transaction that changes
// the service's state, so the message exists if and only if the change does.
// The relay publishes the rows; nothing here talks to Pulsar.
package outbox

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/protobuf/proto"
)

// Execer is what Append needs of a transaction; pgx.Tx satisfies it.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

var _ Execer = (pgx.Tx)(nil)

// Message is one message to publish.
type Message struct {
	// Topic is the full Pulsar topic, e.g. eventcatalog.TopicOrderEvents.
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
	if msg.Topic == "" || msg.AggregateID == "" || msg.Body == nil {
		return "", fmt.Errorf("outbox message needs a topic, an aggregate id and a body")
	}
	payload, err := proto.Marshal(msg.Body)
	if err != nil {
		return "", fmt.Errorf("encoding %s: %w", msg.Body.ProtoReflect().Descriptor().FullName(), err)
	}
	id := msg.EventID
	if id == "" {
		u, err := uuid.NewV7()
		if err != nil {
			return "", fmt.Errorf("minting an event id: %w", err)
		}
		id = u.String()
	}
	headers := []byte("{}")
	if len(msg.Headers) > 0 {
		if headers, err = json.Marshal(msg.Headers); err != nil {
			return "", fmt.Errorf("encoding headers: %w", err)
		}
	}
	_, err = tx.Exec(ctx,
		`INSERT INTO outbox (id, topic, aggregate_id, type, schema_version, payload, headers) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		id, msg.Topic, msg.AggregateID, string(msg.Body.ProtoReflect().Descriptor().FullName()), schemaVersion(msg.Body), payload, headers)
	if err != nil {
		return "", fmt.Errorf("appending to the outbox: %w", err)
	}
	return id, nil
}

// schemaVersion is the major version of the message's package: the N of a
// trailing ".vN" in alpes.orders.v1, else 1.
func schemaVersion(m proto.Message) int {
	pkg := string(m.ProtoReflect().Descriptor().ParentFile().Package())
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
