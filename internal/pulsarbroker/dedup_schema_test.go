package pulsarbroker_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func withSeq(payload string, seq int64) *pulsar.ProducerMessage {
	return &pulsar.ProducerMessage{Payload: []byte(payload), SequenceID: &seq}
}

// TestDeduplicationAcrossProducerRestart is the relay's crash story: a
// producer with a stable name restarts, learns the last persisted sequence
// id, and whatever it re-sends at or below it is dropped by the broker.
func TestDeduplicationAcrossProducerRestart(t *testing.T) {
	t.Parallel()
	c := newEnv(t).client(t)
	tp := topic(t)
	cs := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s"})
	opts := pulsar.ProducerOptions{Topic: tp, Name: "relay-orders", DisableBatching: true}

	p1, err := c.CreateProducer(opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := p1.LastSequenceID(); got != -1 {
		t.Fatalf("new producer name: LastSequenceID = %d, want -1", got)
	}
	for i := range 5 {
		send(t, p1, withSeq("m-"+itoa(i), int64(i)))
	}
	p1.Close()

	// PRODUCER_SUCCESS carries the last persisted sequence id (4): the
	// client continues from 5 for messages without an explicit id. (The Go
	// client's Producer.LastSequenceID() reports only receipts of the
	// current session, so it cannot show this directly.)
	p2 := producer(t, c, opts)
	auto := send(t, p2, &pulsar.ProducerMessage{Payload: []byte("auto")})
	if auto[0].EntryID() < 0 {
		t.Fatalf("message without explicit sequence id was taken for a duplicate: the producer restarted at 0")
	}
	ids := send(t, p2, withSeq("m-3", 3), withSeq("m-4", 4), withSeq("m-5", 6))
	if ids[0].EntryID() != -1 || ids[0].LedgerID() != -1 {
		t.Fatalf("duplicate receipted as %v, want ledger and entry -1", ids[0])
	}
	// An application resend with a new sequence id is a new message.
	send(t, p2, withSeq("m-5 again", 7))

	for _, want := range []string{"m-0", "m-1", "m-2", "m-3", "m-4", "auto", "m-5", "m-5 again"} {
		m := receive(t, cs)
		if string(m.Payload()) != want {
			t.Fatalf("got %q, want %q", m.Payload(), want)
		}
		cs.Ack(m)
	}
	expectNothing(t, cs, 200*time.Millisecond)
}

func TestProtobufNativeSchema(t *testing.T) {
	t.Parallel()
	c := newEnv(t).client(t)
	tp := topic(t)
	schema := pulsar.NewProtoNativeSchemaWithMessage(&timestamppb.Timestamp{}, nil)
	cs := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", Schema: schema})
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, Schema: schema})
	want := timestamppb.New(time.Unix(1700000000, 42))
	ctx, cancel := context.WithTimeout(t.Context(), receiveTimeout)
	defer cancel()
	if _, err := p.Send(ctx, &pulsar.ProducerMessage{Value: want}); err != nil {
		t.Fatal(err)
	}
	m := receive(t, cs)
	var got timestamppb.Timestamp
	if err := m.GetSchemaValue(&got); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(&got, want) {
		t.Fatalf("decoded %v, want %v", &got, want)
	}
	if len(m.SchemaVersion()) == 0 {
		t.Fatal("message carries no schema version")
	}

	// The same schema from another producer is the same version.
	p2 := producer(t, c, pulsar.ProducerOptions{Topic: tp, Schema: schema})
	if _, err := p2.Send(ctx, &pulsar.ProducerMessage{Value: want}); err != nil {
		t.Fatal(err)
	}
	if m2 := receive(t, cs); !bytes.Equal(m2.SchemaVersion(), m.SchemaVersion()) {
		t.Fatalf("same schema, version %x then %x", m.SchemaVersion(), m2.SchemaVersion())
	}

	// A schema of another type is incompatible (Pulsar's default strategy
	// allows no change of type), for producers and consumers alike.
	str := pulsar.NewStringSchema(nil)
	if _, err := c.CreateProducer(pulsar.ProducerOptions{Topic: tp, Schema: str}); err == nil ||
		!strings.Contains(err.Error(), "IncompatibleSchema") {
		t.Fatalf("producer with a string schema: err = %v, want IncompatibleSchema", err)
	}
	if _, err := c.Subscribe(pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s2", Schema: str}); err == nil ||
		!strings.Contains(err.Error(), "IncompatibleSchema") {
		t.Fatalf("consumer with a string schema: err = %v, want IncompatibleSchema", err)
	}
}

func TestLargeMessages(t *testing.T) {
	t.Parallel()
	c := newEnv(t).client(t)
	tp := topic(t)
	cs := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s"})
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, DisableBatching: true})
	big := bytes.Repeat([]byte("x"), 5<<20-1024) // just under the 5 MiB limit
	send(t, p, &pulsar.ProducerMessage{Payload: big})
	if got := receive(t, cs).Payload(); !bytes.Equal(got, big) {
		t.Fatalf("received %d bytes, want %d", len(got), len(big))
	}
	ctx, cancel := context.WithTimeout(t.Context(), receiveTimeout)
	defer cancel()
	_, err := p.Send(ctx, &pulsar.ProducerMessage{Payload: bytes.Repeat([]byte("x"), 5<<20+1)})
	if err == nil || !strings.Contains(err.Error(), "size") {
		t.Fatalf("oversize send: err = %v, want a size error", err)
	}
}

func TestCompressionPassesThrough(t *testing.T) {
	t.Parallel()
	c := newEnv(t).client(t)
	tp := topic(t)
	cs := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s"})
	for _, ct := range []pulsar.CompressionType{pulsar.LZ4, pulsar.ZLib, pulsar.ZSTD} {
		p := producer(t, c, pulsar.ProducerOptions{Topic: tp, CompressionType: ct})
		payload := bytes.Repeat([]byte("compressible "), 1000)
		send(t, p, &pulsar.ProducerMessage{Payload: payload})
		if got := receive(t, cs).Payload(); !bytes.Equal(got, payload) {
			t.Fatalf("compression %v: payload changed", ct)
		}
	}
}
