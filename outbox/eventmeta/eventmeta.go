// Package eventmeta names the Pulsar message properties every alpes event
// carries (docs/adr/0006-topic-naming-and-keys.md). The relay sets them from
// the outbox row; consumers read them to deduplicate, route and measure lag.
package eventmeta

// Message properties.
const (
	// EventID is the outbox row's id: stable across re-sends and replays, the
	// key of every consumer's inbox.
	EventID = "alpes-event-id"
	// Type is the fully qualified protobuf message name, e.g. alpes.orders.v1.OrderPlaced.
	Type = "alpes-type"
	// SchemaVersion is the major version of the message's package, e.g. "1".
	SchemaVersion = "alpes-schema-version"
	// AggregateID is the id of the aggregate the event is about; also the key.
	AggregateID = "alpes-aggregate-id"
	// CommitLSN is the source transaction's commit position (absent on replays).
	CommitLSN = "alpes-commit-lsn"
	// CommitTime is the source transaction's commit time, RFC 3339 with nanoseconds.
	CommitTime = "alpes-commit-time"

	// Source names the relay source of a quarantined row.
	Source = "alpes-source"
	// QuarantineReason says why a row went to the quarantine topic.
	QuarantineReason = "alpes-quarantine-reason"
	// OriginalTopic is the topic a quarantined row was meant for.
	OriginalTopic = "alpes-original-topic"
	// ReplayedAt marks a message re-published by `alpes relay replay`.
	ReplayedAt = "alpes-replayed-at"
)
