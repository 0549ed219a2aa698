// Package pulsarsend is the relay's own Pulsar producer: a small client of
// the Pulsar binary protocol (internal/pulsarwire) that does exactly what the
// relay's streaming path needs, and nothing else.
//
// Contract, kept on purpose (docs/adr/0008):
//
//   - One message per SEND (Producer.Send), whose metadata is exactly what
//     pulsar-client-go v0.19 sends for an unbatched, uncompressed
//     ProducerMessage with a key, an ordering key, properties, an event time
//     and a sequence id: producer name, sequence id, publish time,
//     properties, partition key (when the key is not empty), uncompressed
//     size, event time and ordering key (when set). Consumers
//     (pulsar-client-go, Key_Shared subscriptions, the inbox) see the same
//     messages. A message using anything else (a schema value, delayed
//     delivery, replication clusters, a transaction) is refused.
//   - Or several messages per SEND (Producer.SendBatch): one entry laid out
//     as pulsar-client-go lays out a batch (a SingleMessageMetadata and a
//     payload per message), whose command and metadata carry the lowest
//     sequence id and, unlike pulsar-client-go, the highest
//     (highest_sequence_id), which the broker's deduplication remembers.
//     A batch's messages share one routing key (ordering key, or key when
//     there is none), which the entry carries: Key_Shared dispatches an
//     entry whole by that key, so a batch goes where each of its messages
//     would go alone.
//   - No internal reconnect: a connection error, a SEND_ERROR, a
//     CLOSE_PRODUCER from the broker, a receipt missing for longer than
//     Options.ReceiptTimeout, or a broker silent for Options.KeepAlive fails
//     every pending send of the producers concerned, and those producers for
//     good. Recovery is the caller's: the relay ends its session and streams
//     again from the position it confirmed; broker deduplication drops what
//     it sends again. A client that reconnected and resent by itself would
//     need its own proof of exactly-once; this one needs none.
//   - Keep-alive: every PING is answered with a PONG; a connection on which
//     nothing arrives for half of KeepAlive sends a PING, and one on which
//     nothing arrives for KeepAlive fails.
//   - Receipts: the broker answers each SEND with a SEND_RECEIPT, in order
//     per producer. Each is matched to the oldest pending send by sequence
//     id, and that send's callback runs; a duplicate dropped by the broker's
//     deduplication has ledger and entry -1 (Receipt.Duplicate) and is a
//     receipt all the same.
//   - The handshake's last sequence id: Producer.LastSequenceID is the
//     PRODUCER_SUCCESS's last_sequence_id, the highest id the broker has
//     persisted under the producer's name (-1: none, or no deduplication).
//   - One connection per broker: a Client shares a connection between all
//     its producers on the same broker (and the lookups), with one handshake
//     per producer.
//   - Flow: a Client does not bound what is in flight (the caller does);
//     writes go through a buffered writer that is flushed whenever the send
//     queue is momentarily empty, so a burst costs few system calls.
//   - Reaching the broker: pulsar:// or pulsar+ssl:// (with a CA bundle),
//     token authentication, lookups that follow redirects and a proxy's
//     proxy_through_service_url, all bounded by Options.OperationTimeout.
//
// Callbacks run on the connection's reading goroutine, one at a time and in
// receipt order: they must not block for long, nor call back into the
// Producer's Close or Flush.
package pulsarsend
