package broker_test

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
