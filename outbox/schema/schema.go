// Package schema is the one definition of the tables the outbox mechanism
// lives in: the outbox every producing service writes and the relay streams,
// the publication it streams it through, the inbox (with apply_progress) and
// the parked messages of every consuming service.
//
// The tables are defined by the goose templates in this folder (outbox.sql,
// inbox.sql, parked.sql), which the migrations package renders into each
// service's migrations with the service's roles. The names below are the
// ones those templates use, and the SQL that reads or writes the outbox is
// written here, beside its definition, so that a column is renamed in one
// package: the writer (package outbox), the relay's decoder, its replay and
// its sweep all take their names and statements from here. A test migrates a
// real database and checks both against what Postgres has.
package schema

import "embed"

// Files holds the templates of the tables: outbox.sql, inbox.sql and
// parked.sql. They are rendered with text/template and these fields:
// .Role (the service's login), .RelayRole (the relay's login) and
// .Publication.
//
//go:embed outbox.sql inbox.sql parked.sql
var Files embed.FS

// Publication is the publication of the outbox in every producing service's
// database: what the relay's replication slot streams.
const Publication = "alpes_outbox"

// The outbox.
const (
	// OutboxTable is the table a service inserts an event into, in the
	// transaction of the state change the event describes.
	OutboxTable = "outbox"

	// Its columns. The relay's decoder reads an insert by these names.
	OutboxID            = "id"             // uuid: the event id, stable across re-sends
	OutboxTopic         = "topic"          // the Pulsar topic
	OutboxAggregateID   = "aggregate_id"   // the message key: per-key order
	OutboxType          = "type"           // fully qualified protobuf message name
	OutboxSchemaVersion = "schema_version" // the protobuf package's version
	OutboxPayload       = "payload"        // the protobuf-encoded message
	OutboxHeaders       = "headers"        // jsonb object of strings, e.g. trace context
	OutboxCreatedAt     = "created_at"     // insert time: the sweep's and replay's clock
)

// OutboxColumns are the outbox's columns in their table order.
var OutboxColumns = []string{
	OutboxID, OutboxTopic, OutboxAggregateID, OutboxType,
	OutboxSchemaVersion, OutboxPayload, OutboxHeaders, OutboxCreatedAt,
}

// The statements on the outbox, each used by one component. They are
// written out, not assembled from the names above, so they read as SQL; the
// schema test prepares each one against a migrated database, so a renamed
// column cannot leave one behind.
const (
	// InsertOutbox appends one event: $1 id, $2 topic, $3 aggregate id,
	// $4 type, $5 schema version, $6 payload, $7 headers (the writer).
	InsertOutbox = `INSERT INTO outbox (id, topic, aggregate_id, type, schema_version, payload, headers)
VALUES ($1, $2, $3, $4, $5, $6, $7)`

	// SelectOutboxWindow reads the rows created in [$1, $2), of topic $3 or
	// of every topic when $3 is '', in creation order, every column in
	// OutboxColumns order with the id as text (the relay's replay).
	SelectOutboxWindow = `
SELECT id::text, topic, aggregate_id, type, schema_version, payload, headers, created_at
FROM outbox WHERE created_at >= $1 AND created_at < $2 AND ($3 = '' OR topic = $3)
ORDER BY created_at, id`

	// SweepOutbox deletes up to $2 of the oldest rows created more than the
	// interval $1 ago (the relay's retention sweep). The subquery walks
	// outbox_created_at_idx; the delete goes by primary key.
	SweepOutbox = `
DELETE FROM outbox WHERE id IN (
    SELECT id FROM outbox WHERE created_at < now() - $1::interval
    ORDER BY created_at LIMIT $2)`

	// OutboxHasRows answers whether the outbox holds any row (the relay, in a
	// new slot's snapshot).
	OutboxHasRows = `SELECT EXISTS (SELECT FROM outbox)`
)

// The consuming side: what the inbox package writes in the same transaction
// as a message's effect.
const (
	// InboxTable has one row per applied message, keyed by event id.
	InboxTable = "inbox"
	// ProgressTable keeps, per source topic, the newest applied message.
	ProgressTable = "apply_progress"
	// ParkedTable keeps the messages set aside instead of applied.
	ParkedTable = "parked_messages"
)
