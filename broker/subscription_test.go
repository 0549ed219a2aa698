package broker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
)

func TestExclusiveSubscriptionRefusesSecondConsumer(t *testing.T) {
	t.Parallel()
	c := newEnv(t).client(t)
	tp := topic(t)
	subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", Type: pulsar.Exclusive})
	_, err := c.Subscribe(pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", Type: pulsar.Exclusive})
	if err == nil || !strings.Contains(err.Error(), "ConsumerBusy") {
		t.Fatalf("second exclusive consumer: err = %v, want ConsumerBusy", err)
	}
	_, err = c.Subscribe(pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", Type: pulsar.Shared})
	if err == nil {
		t.Fatal("a Shared consumer joined an Exclusive subscription")
	}
}

func TestInitialPosition(t *testing.T) {
	t.Parallel()
	c := newEnv(t).client(t)
	tp := topic(t)
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp})
	send(t, p, payloads("old-", 3)...)
	earliest := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "e",
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest})
	latest := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "l"})
	send(t, p, payloads("new-", 1)...)
	for _, want := range []string{"old-0", "old-1", "old-2", "new-0"} {
		if got := string(receive(t, earliest).Payload()); got != want {
			t.Fatalf("earliest got %q, want %q", got, want)
		}
	}
	if got := string(receive(t, latest).Payload()); got != "new-0" {
		t.Fatalf("latest got %q, want new-0", got)
	}
}

func TestSharedSpreadsAndRedeliversLeavingConsumersMessages(t *testing.T) {
	t.Parallel()
	c := newEnv(t).client(t)
	tp := topic(t)
	opts := pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", Type: pulsar.Shared, ReceiverQueueSize: 5}
	a := subscribe(t, c, opts)
	leaving, err := c.Subscribe(opts)
	if err != nil {
		t.Fatal(err)
	}
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, DisableBatching: true})
	send(t, p, payloads("m-", 20)...)

	// The leaving consumer takes one message and closes without acking:
	// its unacknowledged messages must reach the other consumer.
	first := receive(t, leaving)
	leaving.Close()
	seen := map[string]bool{}
	for len(seen) < 20 {
		m := receive(t, a)
		seen[string(m.Payload())] = true
		a.Ack(m)
	}
	if !seen[string(first.Payload())] {
		t.Fatalf("message %q held by the leaving consumer was not redelivered", first.Payload())
	}
}

func TestCumulativeAck(t *testing.T) {
	t.Parallel()
	c := newEnv(t).client(t)
	tp := topic(t)
	opts := pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", Type: pulsar.Exclusive}
	cs, err := c.Subscribe(opts)
	if err != nil {
		t.Fatal(err)
	}
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, DisableBatching: true})
	send(t, p, payloads("m-", 5)...)
	var last pulsar.Message
	for range 3 {
		last = receive(t, cs)
	}
	if err := cs.AckCumulative(last); err != nil {
		t.Fatal(err)
	}
	cs.Close()
	// A new consumer of the subscription resumes after the cumulative ack.
	again := subscribe(t, c, opts)
	if got := string(receive(t, again).Payload()); got != "m-3" {
		t.Fatalf("resumed at %q, want m-3", got)
	}
}

func TestAckWithResponseAndUnsubscribe(t *testing.T) {
	t.Parallel()
	c := newEnv(t).client(t)
	tp := topic(t)
	opts := pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", AckWithResponse: true,
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest}
	cs, err := c.Subscribe(opts)
	if err != nil {
		t.Fatal(err)
	}
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp})
	send(t, p, payloads("m-", 2)...)
	if err := cs.Ack(receive(t, cs)); err != nil {
		t.Fatalf("ack with response: %v", err)
	}
	if err := cs.Unsubscribe(); err != nil {
		t.Fatalf("unsubscribe: %v", err)
	}
	cs.Close()
	// The subscription is gone: a new one from earliest sees both messages.
	again := subscribe(t, c, opts)
	if got := string(receive(t, again).Payload()); got != "m-0" {
		t.Fatalf("after unsubscribe got %q, want m-0", got)
	}
}

func TestNackRedeliversWithCount(t *testing.T) {
	t.Parallel()
	c := newEnv(t).client(t)
	tp := topic(t)
	cs := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", Type: pulsar.Shared,
		NackRedeliveryDelay: 50 * time.Millisecond})
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp})
	send(t, p, payloads("m-", 1)...)
	for want := uint32(0); want < 3; want++ {
		m := receive(t, cs)
		if m.RedeliveryCount() != want {
			t.Fatalf("redelivery count %d, want %d", m.RedeliveryCount(), want)
		}
		cs.Nack(m)
	}
	cs.Ack(receive(t, cs))
}

func TestDeadLetterAfterMaxRedeliveries(t *testing.T) {
	t.Parallel()
	c := newEnv(t).client(t)
	tp := topic(t)
	dlq := tp + "-DLQ"
	dead := subscribe(t, c, pulsar.ConsumerOptions{Topic: dlq, SubscriptionName: "dlq",
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest})
	cs := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", Type: pulsar.Shared,
		NackRedeliveryDelay: 20 * time.Millisecond,
		DLQ:                 &pulsar.DLQPolicy{MaxDeliveries: 3, DeadLetterTopic: dlq},
	})
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp})
	send(t, p, &pulsar.ProducerMessage{Payload: []byte("poison"), Key: "k1"})
	for range 3 {
		cs.Nack(receive(t, cs))
	}
	m := receive(t, dead)
	if string(m.Payload()) != "poison" || m.Key() != "k1" {
		t.Fatalf("dead letter %q key %q", m.Payload(), m.Key())
	}
	dead.Ack(m)
	expectNothing(t, cs, 200*time.Millisecond)
}

func TestRetryTopic(t *testing.T) {
	t.Parallel()
	c := newEnv(t).client(t)
	tp := topic(t)
	cs := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", Type: pulsar.Shared,
		RetryEnable: true, DLQ: &pulsar.DLQPolicy{MaxDeliveries: 5}})
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp})
	send(t, p, payloads("m-", 1)...)
	cs.ReconsumeLater(receive(t, cs), 10*time.Millisecond)
	m := receive(t, cs)
	if string(m.Payload()) != "m-0" || m.Properties()["RECONSUMETIMES"] != "1" {
		t.Fatalf("retried message %q properties %v", m.Payload(), m.Properties())
	}
	cs.Ack(m)
}

func TestProducerNameConflict(t *testing.T) {
	t.Parallel()
	c := newEnv(t).client(t)
	tp := topic(t)
	producer(t, c, pulsar.ProducerOptions{Topic: tp, Name: "relay"})
	_, err := c.CreateProducer(pulsar.ProducerOptions{Topic: tp, Name: "relay"})
	if err == nil || !strings.Contains(err.Error(), "ProducerBusy") {
		t.Fatalf("second producer named relay: err = %v, want ProducerBusy", err)
	}
	// Generated names are unique.
	a := producer(t, c, pulsar.ProducerOptions{Topic: tp})
	b := producer(t, c, pulsar.ProducerOptions{Topic: tp})
	if a.Name() == "" || a.Name() == b.Name() {
		t.Fatalf("generated names %q and %q", a.Name(), b.Name())
	}
}
