package relay

import (
	"github.com/apache/pulsar-client-go/pulsar"
	"google.golang.org/protobuf/encoding/protowire"
)

// What the Pulsar client and the broker hold against the broker's
// maxMessageSize is not the payload alone. The Go client (v0.19) refuses an
// unbatched message whose payload plus serialized MessageMetadata exceeds it,
// by failing the send (the session would then end and stream the same row
// again, forever); the broker counts the whole frame. The metadata carries
// the producer name, the partition key and every property, so a row's
// headers count. messageSize estimates that sum from above; the relay
// quarantines a row whose estimate exceeds SourceConfig.MaxMessageBytes.

// metadataSlack bounds the MessageMetadata fields the relay does not size
// one by one: sequence id, publish time and event time (11 bytes each at
// most), uncompressed size (6), and what the client may add (compression,
// flags), with a wide margin.
const metadataSlack = 128

// messageSize is at least what msg takes against the broker's limit when
// sent by a producer whose name is at most producerNameLen bytes long: its
// payload plus an upper bound of its serialized metadata.
func messageSize(msg *pulsar.ProducerMessage, producerNameLen int) int {
	n := len(msg.Payload) + metadataSlack + bytesField(producerNameLen) + bytesField(len(msg.Key))
	if msg.OrderingKey != "" {
		n += 1 + bytesField(len(msg.OrderingKey)) // field 18: a two-byte tag
	}
	for k, v := range msg.Properties {
		n += bytesField(bytesField(len(k)) + bytesField(len(v))) // a KeyValue message
	}
	return n
}

// bytesField is the size of a length-delimited protobuf field of n bytes
// with a one-byte tag (field numbers up to 15, as in MessageMetadata's
// properties, producer name, partition key, and KeyValue).
func bytesField(n int) int { return 1 + protowire.SizeBytes(n) }

// producerNameLen bounds the length of the relay's producer names for source
// and topic, in any lane and epoch: "relay." + source + "." + stream token +
// "." + at most the topic + ".l" + two digits + ".e" + digits.
func producerNameLen(source, topic string) int {
	return len("relay.") + len(source) + 1 + streamTokenLen + 1 + len(topic) + len(".l00") + len(".e") + 20
}
