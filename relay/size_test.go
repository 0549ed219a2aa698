package relay

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
	"github.com/alpes/alpes/relay/pgsource"
)

// TestMessageSizeBoundsWhatTheClientCounts: the estimate is at least the
// payload plus the MessageMetadata the Go client builds for an unbatched
// message (what it holds against the broker's limit), and close to it.
func TestMessageSizeBoundsWhatTheClientCounts(t *testing.T) {
	p := &pipeline{source: benchSource(t, false)}
	row := benchRow(t)
	row.Headers["x-padding"] = strings.Repeat("h", 300)
	p.openTx(&pgsource.Begin{CommitLSN: 1 << 42, CommitTime: time.Now()})
	_, epoch, msg, _, err := p.encode(row)
	if err != nil {
		t.Fatal(err)
	}
	name := producerName("bench", strings.Repeat("f", streamTokenLen), row.Topic, laneCount-1, epoch+1<<19) // the longest lane and epoch suffixes
	md := &wirev1.MessageMetadata{
		ProducerName:     proto.String(name),
		SequenceId:       proto.Uint64(1<<63 - 1),
		PublishTime:      proto.Uint64(uint64(time.Now().UnixMilli())),
		UncompressedSize: proto.Uint32(uint32(len(msg.Payload))),
		EventTime:        proto.Uint64(uint64(time.Now().UnixMilli())),
		PartitionKey:     proto.String(msg.Key),
		OrderingKey:      []byte(msg.OrderingKey),
	}
	for k, v := range msg.Properties {
		md.Properties = append(md.Properties, &wirev1.KeyValue{Key: proto.String(k), Value: proto.String(v)})
	}
	actual := len(msg.Payload) + proto.Size(md)
	estimate := messageSize(msg, producerNameLen("bench", row.Topic))
	if estimate < actual || estimate > actual+512 {
		t.Errorf("estimate %d for a message of %d bytes", estimate, actual)
	}
}

// TestQuarantinedMessageFitsWhateverTheRowHolds: a row with a payload, headers
// and an aggregate id each over the broker's limit still yields a quarantine
// message within it, with the reason.
func TestQuarantinedMessageFitsWhateverTheRowHolds(t *testing.T) {
	src := benchSource(t, false)
	src.cfg.MaxMessageBytes = minMessageBytes
	p := &pipeline{source: src}
	row := benchRow(t)
	huge := strings.Repeat("é", minMessageBytes)
	row.Payload = []byte(huge)
	row.AggregateID = huge
	row.Headers = map[string]string{"x-a": huge, "x-b": huge}
	p.openTx(&pgsource.Begin{CommitLSN: 0x1000, CommitTime: time.Now()})
	topic, _, msg, _, err := p.encode(row)
	if err != nil {
		t.Fatal(err)
	}
	if topic != src.cfg.QuarantineTopic {
		t.Fatalf("row sent to %s, want the quarantine", topic)
	}
	if n := messageSize(msg, producerNameLen(src.cfg.Name, topic)); n > src.cfg.MaxMessageBytes {
		t.Errorf("quarantine message of up to %d bytes, over the limit of %d", n, src.cfg.MaxMessageBytes)
	}
	if msg.Properties["alpes-quarantine-reason"] == "" || msg.Properties["alpes-event-id"] != row.EventID {
		t.Errorf("quarantine message lost its reason or event id: %v", msg.Properties)
	}
}

// TestSequenceIDsIgnoreTheQuarantineDecision: the same transaction encoded
// with and without a row quarantined gives every row the same id.
func TestSequenceIDsIgnoreTheQuarantineDecision(t *testing.T) {
	ids := func(maxPayload int) []int64 {
		src := benchSource(t, false)
		src.cfg.MaxPayloadBytes = maxPayload
		p := &pipeline{source: src}
		p.openTx(&pgsource.Begin{CommitLSN: 0x1000, CommitTime: time.Now()})
		var seqs []int64
		for _, size := range []int{1, 100, 1, 100, 1} {
			row := benchRow(t)
			row.Payload = make([]byte, size)
			_, _, msg, _, err := p.encode(row)
			if err != nil {
				t.Fatal(err)
			}
			seqs = append(seqs, *msg.SequenceID)
		}
		return seqs
	}
	all, some := ids(1000), ids(10)
	for i := range all {
		if all[i] != some[i] {
			t.Errorf("row %d: sequence id %d when published, %d when quarantined", i, all[i], some[i])
		}
	}
}
