// Package broker is alpes's embedded, single-node broker that speaks
// the Apache Pulsar binary protocol, so that the unchanged pulsar-client-go
// produces, consumes and reads against it as against a standalone Pulsar.
// It is a development broker, for tests and the one-command local run;
// production points at real Pulsar.
//
// Start runs a broker in the background (tests, `alpes dev`); Run runs one
// until its context ends (`alpes broker`). Topics are created on first use.
// Every topic is one ordered log of entries; an entry is what a producer
// sent in one SEND (a single message or a batch), stored and replayed byte
// for byte, so compression and batching pass through untouched.
//
// Storage: in memory by default. With Config.DataDir the broker is
// durable: each topic has an append-only log file, and a SEND is receipted
// only after its entry is fsynced; a group commit syncs everything written
// meanwhile with one fsync per topic. Entries become visible to consumers
// once durable. Schemas are synced as they are registered, durable
// subscriptions' cursors are saved every 100 ms (so a crash may redeliver
// recent acknowledgements, never lose a message), and deduplication state
// is rebuilt from the log itself. A durable topic keeps only an index and
// the newest entries' bytes in memory and reads older entries back from
// disk, so a large backlog does not fill memory. An in-memory topic drops
// entries every subscription has acknowledged, beyond its newest 1000.
//
// The admin API (admin*.go) serves the part of Pulsar's /admin/v2 REST API
// that alpes uses, with Pulsar's paths, status codes and JSON: namespaces,
// topics (unload included), partitioned topics, subscriptions, stats,
// deduplication policies and health.
//
// Concurrency: each client connection has a reader goroutine that handles
// its commands in order and a writer goroutine that sends its frames. All
// state of a topic (log, producers, subscriptions, their consumers) is
// guarded by that topic's mutex; the registry of topics has its own. Locks
// are taken in the order registry, topic, connection; the policy lock, the
// commit queue and each connection's outgoing buffer are leaves. No
// goroutine blocks on the network while holding a topic's lock (frames
// are queued for the writers), and the commit loop syncs entries without
// it; only the rare registration of a new schema version syncs under it.
package broker
