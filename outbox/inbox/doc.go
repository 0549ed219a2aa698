// Package inbox is the consumer framework every alpes service uses to apply
// the messages of other services exactly once to its own database.
//
// A Consumer subscribes to one or more topics with a Key_Shared subscription
// named after the service, from the earliest message, so any number of
// instances of a service share the work while the messages of one key (one
// order, one product) stay in order. It takes messages in batches (up to
// Config.BatchSize, waiting briefly for more only when the stream is busy,
// and only while they keep coming: see Config.BatchWait and BatchGap) and
// applies a batch in one Postgres transaction:
//
//   - every message's event id (alpes-event-id) is inserted into the inbox
//     table with ON CONFLICT DO NOTHING; a message whose id is already there
//     is a duplicate (a re-send, a replay, a redelivery after a crash between
//     commit and acknowledgement) and has no effect;
//   - for every new message, the handler registered for its alpes-type is
//     called with the transaction and the decoded protobuf message, so the
//     effect and the inbox row commit together or not at all;
//   - apply_progress records, per topic, the newest source commit time
//     applied, from which anyone computes commit → applied lag.
//
// The framework's own statements cost two round trips per transaction, not
// four: BEGIN is sent in one batch with the inbox insert, and the progress
// update in one with COMMIT. Handlers get an inbox.Tx, which runs statements
// and batches but cannot commit or roll back.
//
// Only after the commit is every message of the batch acknowledged. A crash
// before the commit leaves the messages unacknowledged, and the broker
// delivers them again; a crash after it redelivers them to an inbox that
// already holds them.
//
// # Messages that cannot be applied
//
// A message whose alpes-type has no handler (and is not skipped), whose
// payload does not decode, or whose alpes-schema-version contradicts its
// topic's version suffix is parked: inserted into parked_messages in the same
// transaction as its inbox row, then acknowledged. A handler may park a
// message too, by returning an error wrapping ErrPark. Nothing of that kind
// makes the consumer stop or loop.
//
// A handler error is retried. So is a handler's return of nil over a
// transaction it left unusable: aborted by a statement whose error it
// dropped, or its connection busy with rows it never closed; COMMIT would
// roll back, and the fault would pass for the database's. The messages
// before the failing one in the batch are committed and acknowledged
// first, then the failing message is applied alone, up to
// Config.MaxAttempts times with exponential backoff. If
// it still fails it is published to the dead-letter topic
// <topic>-<subscription>-DLQ with its properties and alpes-dlq-reason,
// recorded in the inbox and in parked_messages, and acknowledged. The
// dead-letter topic has a durable subscription named as the consumer's,
// made before its first message, so dead letters wait there for whoever
// reads them. The
// messages after it, including later messages of the same key, then proceed:
// one poison message holds its key back for the length of its retries, not
// forever. Whoever repairs and replays a dead-lettered message must mind that
// its key has moved on.
//
// Transient database errors are not the message's fault, whether the
// framework's statements or a handler's meet them: errors of SQLSTATE class
// 08 (connection exception), 40 (serialization failure, deadlock), 53
// (insufficient resources), 57 (operator intervention: a statement cancelled
// or timed out, a shutdown) or 58 (system error, such as I/O), 25006 (a
// read-only transaction during a fail-over), 55P03 (lock not available), and
// connection errors without a SQLSTATE. The run of messages is retried,
// unacknowledged, with backoff capped at Config.MaxBackoff, until it commits
// or the context ends; these retries do not count toward MaxAttempts, and
// nothing is parked or dead-lettered for them, so the key waits for the
// database to heal and then moves on in order. Stats.DBRetries counts them.
// Every other error a handler returns is its own, including data exceptions
// (22), constraint violations (23) and syntax or privilege errors (42): it
// takes the bounded retries above. A handler must wrap a database error with
// %w for its SQLSTATE to be seen.
//
// # Operating it
//
// Commit → applied lag per topic is in apply_progress (ReadProgress, or
// last_applied_at - last_committed_at in SQL); Stats counts what one
// instance did. parked_messages holds every message set aside, with its
// properties, payload and reason. To apply one again once the service can
// (a handler deployed for a new type, a bug fixed), delete its inbox row and
// publish it again with its properties: the service role may delete inbox
// rows, and until the row is gone the inbox treats the message as applied.
//
// # The inbox sweep
//
// The inbox would grow by one row per message forever. Run therefore sweeps
// it beside the messages, at start and every Sweep.Interval (default 1m):
// rows applied more than Sweep.Retention (default 7 days, at least 48h)
// before the newest row, and before now, are deleted oldest first, Sweep.Batch rows (default 1000) per short
// transaction of their own, until a batch deletes fewer; a sweep stops when
// Run's context ends. Measuring from the newest row means a service down
// longer than the retention still recognises, on its return, the messages it
// had committed but not acknowledged. Every instance of a service sweeps; they may overlap
// harmlessly. A failed sweep is logged, counted in Stats.SweepFailures and
// tried again at the next interval; it never stops the consumer.
// Stats.Swept counts the rows deleted, Stats.LastSweepAt and
// LastSweepDuration tell the last successful sweep.
//
// A swept id no longer makes its message a duplicate: delivered again, the
// message is applied again. The retention must exceed the longest time after
// its application that a message can arrive again, which is why it defaults
// to a week against the relay's 24-hour replay window (docs/adr/0005), and
// why a subscription must never be reset further back than the retention.
//
// # Concurrency
//
// One Consumer runs one goroutine that receives, applies and acknowledges in
// turn; handlers are called from it, one at a time, never concurrently. The
// sweep runs in a second goroutine, on connections of its own from DB.
// Scale out by running more instances (processes or Consumers) with the same
// subscription. Stats may be called from any goroutine.
package inbox
