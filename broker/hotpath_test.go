package broker

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/alpes/alpes/internal/pulsarwire"
	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
)

// The work done for each SEND: these tests pin what it computes and that
// it does so without allocating beyond the entry itself.

func summaryOf(t *testing.T, md *wirev1.MessageMetadata) pulsarwire.MetadataSummary {
	t.Helper()
	msg, err := pulsarwire.NewMessage(md, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := msg.DecodeSummary()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStickyKey(t *testing.T) {
	md := func(f func(*wirev1.MessageMetadata)) *wirev1.MessageMetadata {
		m := &wirev1.MessageMetadata{ProducerName: proto.String("relay-1"), SequenceId: proto.Uint64(42), PublishTime: proto.Uint64(1)}
		f(m)
		return m
	}
	tests := []struct {
		name string
		md   *wirev1.MessageMetadata
		want string
	}{
		{"keyless: producer and sequence id", md(func(*wirev1.MessageMetadata) {}), "relay-1-42"},
		{"partition key", md(func(m *wirev1.MessageMetadata) { m.PartitionKey = proto.String("order-1") }), "order-1"},
		{"empty partition key", md(func(m *wirev1.MessageMetadata) { m.PartitionKey = proto.String("") }), ""},
		{"base64 partition key", md(func(m *wirev1.MessageMetadata) {
			m.PartitionKey, m.PartitionKeyB64Encoded = proto.String("b3JkZXItMQ=="), proto.Bool(true)
		}), "order-1"},
		{"partition key that is not base64", md(func(m *wirev1.MessageMetadata) {
			m.PartitionKey, m.PartitionKeyB64Encoded = proto.String("not base64!"), proto.Bool(true)
		}), "not base64!"},
		{"ordering key first", md(func(m *wirev1.MessageMetadata) {
			m.PartitionKey, m.OrderingKey = proto.String("order-1"), []byte("ord")
		}), "ord"},
		{"empty ordering key", md(func(m *wirev1.MessageMetadata) {
			m.PartitionKey, m.OrderingKey = proto.String("order-1"), []byte{}
		}), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := summaryOf(t, tt.md)
			if got := string(stickyKey(nil, &s)); got != tt.want {
				t.Fatalf("stickyKey = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNewEntryAllocatesOnlyTheEntry(t *testing.T) {
	md := &wirev1.MessageMetadata{ProducerName: proto.String("relay-1"), SequenceId: proto.Uint64(42), PublishTime: proto.Uint64(1)}
	msg, err := pulsarwire.NewMessage(md, []byte("payload"))
	if err != nil {
		t.Fatal(err)
	}
	s := summaryOf(t, md)
	allocs := testing.AllocsPerRun(100, func() {
		newEntry(msg, &s, sharedString(s.ProducerName, "relay-1"))
	})
	if allocs != 1 {
		t.Fatalf("newEntry allocates %v times, want 1", allocs)
	}
	if e := newEntry(msg, &s, "relay-1"); e.keyHash != keyHash([]byte("relay-1-42")) {
		t.Fatalf("key hash %d, want the hash of the producer and sequence id", e.keyHash)
	}
}

func TestSharedString(t *testing.T) {
	if got := sharedString([]byte("relay-1"), "relay-1"); got != "relay-1" {
		t.Fatalf("sharedString = %q", got)
	}
	if got := sharedString([]byte("relay-2"), "relay-1"); got != "relay-2" {
		t.Fatalf("sharedString = %q, want the bytes' own string", got)
	}
}

func TestTopicNameSpelling(t *testing.T) {
	name, err := parseTopicName("tenant-a/ns-b/orders-partition-3")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := name.String(), "persistent://tenant-a/ns-b/orders-partition-3"; got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
	if got, want := name.base().String(), "persistent://tenant-a/ns-b/orders"; got != want {
		t.Fatalf("base = %q, want %q", got, want)
	}
	if got, want := name.namespaceName(), "tenant-a/ns-b"; got != want {
		t.Fatalf("namespaceName = %q, want %q", got, want)
	}
}

func TestDeduplicationEnabled(t *testing.T) {
	b := &Broker{
		dedupPolicy:      map[string]bool{"tenant-a/ns-b": true},
		topicDedupPolicy: map[string]bool{"persistent://tenant-a/ns-b/payments": false},
	}
	for topic, want := range map[string]bool{
		"tenant-a/ns-b/orders-partition-3":   true,  // the namespace's policy
		"tenant-a/ns-b/payments-partition-0": false, // the partitioned topic's
		"tenant-a/ns-c/orders":               false, // the broker's default
	} {
		name, err := parseTopicName(topic)
		if err != nil {
			t.Fatal(err)
		}
		if got := b.deduplicationEnabled(name); got != want {
			t.Errorf("deduplicationEnabled(%s) = %v, want %v", topic, got, want)
		}
		if allocs := testing.AllocsPerRun(100, func() { b.deduplicationEnabled(name) }); allocs != 0 {
			t.Errorf("deduplicationEnabled(%s) allocates %v times", topic, allocs)
		}
	}
}
