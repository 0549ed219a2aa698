package pulsarsend_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/alpes/alpes/broker/brokertest"
	"github.com/alpes/alpes/relay/pulsarsend"
)

// sendBatch sends msgs as one batch under seqs and returns where each
// message's result will arrive.
func sendBatch(t *testing.T, p *pulsarsend.Producer, seqs []int64, msgs []pulsar.ProducerMessage) []<-chan result {
	t.Helper()
	batch := make([]pulsarsend.BatchMessage, len(msgs))
	chans := make([]<-chan result, len(msgs))
	for i := range msgs {
		msgs[i].SequenceID = &seqs[i]
		ch := make(chan result, 1)
		batch[i] = pulsarsend.BatchMessage{Msg: &msgs[i], Done: func(r pulsarsend.Receipt, err error) { ch <- result{r, err} }}
		chans[i] = ch
	}
	if err := p.SendBatch(batch); err != nil {
		t.Fatalf("SendBatch(%v): %v", seqs, err)
	}
	return chans
}

// awaitAll waits for every result and fails unless each is stored
// (duplicate false) or dropped (duplicate true), in one entry, in order.
func awaitAll(t *testing.T, what string, chans []<-chan result, seqs []int64, duplicate bool) {
	t.Helper()
	var entry [2]int64
	for i, ch := range chans {
		r := await(t, ch)
		switch {
		case r.err != nil:
			t.Fatalf("%s: message %d: %v", what, i, r.err)
		case r.receipt.Duplicate() != duplicate || r.receipt.SequenceID != uint64(seqs[i]) || r.receipt.BatchIndex != int32(i):
			t.Fatalf("%s: message %d: receipt %+v, want sequence id %d, batch index %d, duplicate %t", what, i, r.receipt, seqs[i], i, duplicate)
		case i > 0 && [2]int64{r.receipt.LedgerID, r.receipt.EntryID} != entry:
			t.Fatalf("%s: message %d in entry %d:%d, message 0 in %d:%d", what, i, r.receipt.LedgerID, r.receipt.EntryID, entry[0], entry[1])
		}
		entry = [2]int64{r.receipt.LedgerID, r.receipt.EntryID}
	}
}

func batchOf(n int, orderingKey string) []pulsar.ProducerMessage {
	eventTime := time.Date(2026, 12, 7, 5, 0, 0, 250_000_000, time.UTC)
	msgs := make([]pulsar.ProducerMessage, n)
	for i := range msgs {
		msgs[i] = pulsar.ProducerMessage{
			Payload:     []byte("payload " + strconv.Itoa(i)),
			Key:         "order-" + strconv.Itoa(i),
			OrderingKey: orderingKey,
			EventTime:   eventTime.Add(time.Duration(i) * time.Millisecond),
			Properties:  map[string]string{"alpes-event-id": "e-" + strconv.Itoa(i), "traceparent": "00-ab-cd-01", "empty": ""},
		}
	}
	return msgs
}

// TestBatchReadsAsItsMessages: a batch sent by pulsarsend is one entry that
// a pulsar-client-go consumer reads as the messages it holds, each with its
// own key, ordering key, properties, event time and payload, in order.
func TestBatchReadsAsItsMessages(t *testing.T) {
	b := brokertest.Start(t)
	topic := b.Topic(t, "events.v1")
	consumer, err := b.Client(t).Subscribe(pulsar.ConsumerOptions{
		Topic: topic, SubscriptionName: "check", Type: pulsar.KeyShared, SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	p := createProducer(t, newClient(t, b.ServiceURL, pulsarsend.Options{}), topic, "relay.batch")
	msgs := batchOf(5, "lane-07")
	seqs := []int64{100, 101, 205, 206, 1 << 40}
	awaitAll(t, "batch", sendBatch(t, p, seqs, msgs), seqs, false)

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for i, want := range msgs {
		m, err := consumer.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		consumer.Ack(m)
		if m.Key() != want.Key || m.OrderingKey() != want.OrderingKey || string(m.Payload()) != string(want.Payload) ||
			!maps.Equal(m.Properties(), want.Properties) || !m.EventTime().Equal(want.EventTime) || m.ProducerName() != "relay.batch" {
			t.Errorf("message %d: key %q, ordering key %q, payload %q, properties %v, event time %s, producer %q; want %+v",
				i, m.Key(), m.OrderingKey(), m.Payload(), m.Properties(), m.EventTime(), m.ProducerName(), want)
		}
		if m.ID().BatchIdx() != int32(i) || m.ID().BatchSize() != int32(len(msgs)) {
			t.Errorf("message %d: id %v, want batch index %d of %d", i, m.ID(), i, len(msgs))
		}
	}
}

// TestBatchDeduplicationByLowestAndHighestID pins down what the relay's
// exactness argument relies on (docs/adr/0008): the broker judges a batch
// by its lowest sequence id and remembers its highest. A batch re-sent whole
// is dropped whole; one that starts at or below the highest id taken and
// reaches above it is dropped whole too, new messages included; one that
// starts above it is stored, and a new producer under the name learns its
// highest id.
func TestBatchDeduplicationByLowestAndHighestID(t *testing.T) {
	b := brokertest.Start(t)
	topic := b.Topic(t, "events.v1")
	c := newClient(t, b.ServiceURL, pulsarsend.Options{})
	first := createProducer(t, c, topic, "relay.batchdedup")
	seqs := []int64{10, 11, 12}
	awaitAll(t, "first batch", sendBatch(t, first, seqs, batchOf(3, "lane-01")), seqs, false)
	first.Close()

	again := createProducer(t, c, topic, "relay.batchdedup")
	if got := again.LastSequenceID(); got != 12 {
		t.Fatalf("after a batch of 10 to 12: last sequence id %d, want 12", got)
	}
	awaitAll(t, "the same batch again", sendBatch(t, again, seqs, batchOf(3, "lane-01")), seqs, true)
	straddling := []int64{12, 13}
	awaitAll(t, "a batch from 12 to 13", sendBatch(t, again, straddling, batchOf(2, "lane-01")), straddling, true)
	above := []int64{14, 15}
	awaitAll(t, "a batch from 14 to 15", sendBatch(t, again, above, batchOf(2, "lane-01")), above, false)
	again.Close()

	third := createProducer(t, c, topic, "relay.batchdedup")
	if got := third.LastSequenceID(); got != 15 {
		t.Fatalf("after a batch of 14 to 15: last sequence id %d, want 15", got)
	}
	// What the straddling batch dropped is gone: the topic holds 10 to 12
	// and 14 to 15.
	reader, err := b.Client(t).CreateReader(pulsar.ReaderOptions{Topic: topic, StartMessageID: pulsar.EarliestMessageID()})
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	var got []string
	for len(got) < 5 {
		m, err := reader.Next(ctx)
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		got = append(got, string(m.Payload()))
	}
	if want := []string{"payload 0", "payload 1", "payload 2", "payload 0", "payload 1"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("topic holds %q, want %q", got, want)
	}
}

// TestBatchGoesWhereItsOrderingKeySends: on a Key_Shared subscription a
// batch is dispatched by its ordering key, not by its first message's key:
// batches of one ordering key whose messages have different keys all reach
// one consumer, while the ordering keys spread over both.
func TestBatchGoesWhereItsOrderingKeySends(t *testing.T) {
	b := brokertest.Start(t)
	topic := b.Topic(t, "events.v1")
	client := b.Client(t)
	received := make(chan [2]string, 1000)
	for i := range 2 {
		consumer, err := client.Subscribe(pulsar.ConsumerOptions{
			Topic: topic, SubscriptionName: "lanes", Type: pulsar.KeyShared, Name: "consumer-" + strconv.Itoa(i),
			SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer consumer.Close()
		go func() {
			for m := range consumer.Chan() {
				consumer.Ack(m)
				received <- [2]string{m.OrderingKey(), consumer.Name()}
			}
		}()
	}
	p := createProducer(t, newClient(t, b.ServiceURL, pulsarsend.Options{}), topic, "relay.lanes")
	const lanes, batches, perBatch = 16, 3, 4
	seq := int64(0)
	var pending []<-chan result
	for round := range batches {
		for lane := range lanes {
			msgs := batchOf(perBatch, fmt.Sprintf("lane-%02d", lane))
			seqs := make([]int64, perBatch)
			for i := range msgs {
				msgs[i].Key = fmt.Sprintf("order-%d-%d", round, i) // a different first key each round
				seq++
				seqs[i] = seq
			}
			pending = append(pending, sendBatch(t, p, seqs, msgs)...)
		}
	}
	for _, ch := range pending {
		if r := await(t, ch); r.err != nil {
			t.Fatal(r.err)
		}
	}
	owner := map[string]string{}
	consumers := map[string]bool{}
	timeout := time.After(waitTimeout)
	for range lanes * batches * perBatch {
		select {
		case r := <-received:
			if o, ok := owner[r[0]]; ok && o != r[1] {
				t.Fatalf("ordering key %s reached %s and %s", r[0], o, r[1])
			}
			owner[r[0]] = r[1]
			consumers[r[1]] = true
		case <-timeout:
			t.Fatalf("received only %d ordering keys' messages", len(owner))
		}
	}
	if len(consumers) != 2 {
		t.Errorf("every ordering key went to %v: the batches were not spread by ordering key", consumers)
	}
}

// TestMixedBatchIsRefused: messages whose ids do not grow, or whose routing
// keys differ, are not sent as one batch.
func TestMixedBatchIsRefused(t *testing.T) {
	b := brokertest.Start(t)
	p := createProducer(t, newClient(t, b.ServiceURL, pulsarsend.Options{}), b.Topic(t, "events.v1"), "relay.mixed")
	done := func(pulsarsend.Receipt, error) { t.Error("a callback for a refused batch") }
	batch := func(seqs []int64, msgs ...pulsar.ProducerMessage) []pulsarsend.BatchMessage {
		out := make([]pulsarsend.BatchMessage, len(msgs))
		for i := range msgs {
			msgs[i].SequenceID = &seqs[i]
			out[i] = pulsarsend.BatchMessage{Msg: &msgs[i], Done: done}
		}
		return out
	}
	for name, bad := range map[string][]pulsarsend.BatchMessage{
		"ids not growing":     batch([]int64{5, 5}, pulsar.ProducerMessage{OrderingKey: "a"}, pulsar.ProducerMessage{OrderingKey: "a"}),
		"two ordering keys":   batch([]int64{5, 6}, pulsar.ProducerMessage{OrderingKey: "a"}, pulsar.ProducerMessage{OrderingKey: "b"}),
		"two keys, no orders": batch([]int64{5, 6}, pulsar.ProducerMessage{Key: "a"}, pulsar.ProducerMessage{Key: "b"}),
	} {
		if err := p.SendBatch(bad); !errors.Is(err, pulsarsend.ErrMixedBatch) {
			t.Errorf("%s: %v, want ErrMixedBatch", name, err)
		}
	}
}
