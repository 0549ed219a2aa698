package pulsarbroker_test

import (
	"context"
	"strings"
	"sync"
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

func TestFailoverActiveConsumerAndTakeover(t *testing.T) {
	t.Parallel()
	c := newEnv(t).client(t)
	tp := topic(t)
	opts := pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", Type: pulsar.Failover}
	opts.Name = "a"
	a, err := c.Subscribe(opts)
	if err != nil {
		t.Fatal(err)
	}
	opts.Name = "b"
	b := subscribe(t, c, opts)
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, DisableBatching: true})
	send(t, p, payloads("m-", 4)...)
	// "a" sorts first, so it is active; "b" receives nothing.
	for i := range 2 {
		m := receive(t, a)
		if want := "m-" + itoa(i); string(m.Payload()) != want {
			t.Fatalf("active consumer got %q, want %q", m.Payload(), want)
		}
		a.Ack(m)
	}
	expectNothing(t, b, 200*time.Millisecond)
	a.Close() // "b" takes over from the first unacknowledged message
	for i := 2; i < 4; i++ {
		if got, want := string(receive(t, b).Payload()), "m-"+itoa(i); got != want {
			t.Fatalf("after failover got %q, want %q", got, want)
		}
	}
}

// TestKeySharedKeyAffinityAndOrder runs three Key_Shared consumers, one of
// which leaves halfway, and checks that every key's messages arrive in
// order and that no key is ever delivered to two consumers at once.
func TestKeySharedKeyAffinityAndOrder(t *testing.T) {
	t.Parallel()
	c := newEnv(t).client(t)
	tp := topic(t)
	const keys, perKey = 16, 30
	opts := pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", Type: pulsar.KeyShared, ReceiverQueueSize: 10}
	consumers := []pulsar.Consumer{subscribe(t, c, opts), subscribe(t, c, opts)}
	leaving, err := c.Subscribe(opts)
	if err != nil {
		t.Fatal(err)
	}
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, BatcherBuilderType: pulsar.KeyBasedBatchBuilder})

	var (
		mu       sync.Mutex
		next     = map[string]int{} // next expected sequence per key
		holder   = map[string]int{} // consumer holding unacked messages of a key
		inflight = map[string]int{}
		received int
		allIn    = make(chan struct{})
	)
	check := func(who int, m pulsar.Message) {
		mu.Lock()
		defer mu.Unlock()
		k := m.Key()
		if h, ok := holder[k]; ok && inflight[k] > 0 && h != who {
			t.Errorf("key %s delivered to consumer %d while consumer %d holds it", k, who, h)
		}
		var seq int
		for _, ch := range strings.TrimPrefix(string(m.Payload()), k+"-") {
			seq = seq*10 + int(ch-'0')
		}
		// Redelivery may repeat messages (at least once), but a key's
		// messages never skip ahead of the next one expected.
		if seq > next[k] {
			t.Errorf("key %s: got %d before %d", k, seq, next[k])
		}
		if seq == next[k] {
			next[k]++
			if received++; received == keys*perKey {
				close(allIn)
			}
		}
		holder[k] = who
		inflight[k]++
	}
	acked := func(k string) {
		mu.Lock()
		inflight[k]--
		mu.Unlock()
	}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	consume := func(who int, cs pulsar.Consumer, limit int) {
		defer wg.Done()
		for n := 0; limit < 0 || n < limit; n++ {
			m, err := cs.Receive(ctx)
			if err != nil {
				return
			}
			check(who, m)
			acked(m.Key())
			cs.Ack(m)
		}
	}
	wg.Add(3)
	go consume(0, consumers[0], -1)
	go consume(1, consumers[1], -1)
	go func() {
		consume(2, leaving, 40)
		leaving.Close()
	}()
	for i := range perKey {
		for k := range keys {
			key := "k" + itoa(k)
			p.SendAsync(ctx, &pulsar.ProducerMessage{Key: key, Payload: []byte(key + "-" + itoa(i))},
				func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
					if err != nil {
						t.Errorf("send: %v", err)
					}
				})
		}
	}
	if err := p.FlushWithCtx(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-allIn:
	case <-ctx.Done():
	}
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if received != keys*perKey {
		t.Fatalf("received %d distinct messages in order, want %d", received, keys*perKey)
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
