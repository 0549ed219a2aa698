package broker_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/alpes/alpes/broker/brokertest"
)

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
	b, err := c.Subscribe(opts)
	if err != nil {
		t.Fatal(err)
	}
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, DisableBatching: true})
	send(t, p, payloads("m-", 4)...)

	// Which consumer is active is the broker's choice (the embedded broker
	// picks "a", sorting by name; Pulsar hashes the topic name onto a ring
	// of consumer names, and starts delivering only after its failover
	// delay, 1s by default): the one that receives first is active. Then
	// check the other receives nothing, and close the active one.
	active, standby := a, b
	i, first := firstToReceive(t, a, b)
	if i == 1 {
		active, standby = b, a
	}
	active.Ack(first)
	t.Cleanup(standby.Close)
	if string(first.Payload()) != "m-0" {
		t.Fatalf("active consumer got %q first, want m-0", first.Payload())
	}
	m := receive(t, active)
	if string(m.Payload()) != "m-1" {
		t.Fatalf("active consumer got %q, want m-1", m.Payload())
	}
	active.Ack(m)
	expectNothing(t, standby, 200*time.Millisecond)
	active.Close() // the standby takes over from the first unacknowledged message
	for i := 2; i < 4; i++ {
		if got, want := string(receive(t, standby).Payload()), "m-"+itoa(i); got != want {
			t.Fatalf("after failover got %q, want %q", got, want)
		}
	}
}

// firstToReceive waits for a message on any of the consumers and returns
// the index of the one that got it, and the message. It fails the test if
// more than one receives a message.
func firstToReceive(t *testing.T, consumers ...pulsar.Consumer) (int, pulsar.Message) {
	t.Helper()
	type delivery struct {
		i int
		m pulsar.Message
	}
	ctx, cancel := context.WithTimeout(t.Context(), receiveTimeout)
	defer cancel()
	ch := make(chan delivery, len(consumers))
	var wg sync.WaitGroup
	for i, cs := range consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if m, err := cs.Receive(ctx); err == nil {
				ch <- delivery{i, m}
			}
		}()
	}
	var first delivery
	select {
	case first = <-ch:
	case <-ctx.Done():
		t.Fatal("no consumer received a message")
	}
	cancel()
	wg.Wait()
	select {
	case second := <-ch:
		t.Fatalf("consumers %d and %d both received: %q and %q", first.i, second.i, first.m.Payload(), second.m.Payload())
	default:
	}
	return first.i, first.m
}

// TestFailoverActiveConsumerChoice pins which consumer of a Failover
// subscription on a non-partitioned topic is active. Pulsar hashes the
// topic's name onto a ring of points hashed from the consumers' names: the
// choice depends on the names, not on the order consumers arrive in. The
// table is what Pulsar 4.0 chose. Each run subscribes anew (non-durable,
// a name of its own), so runs against a shared Pulsar do not interfere.
func TestFailoverActiveConsumerChoice(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sub := brokertest.UniqueName(t)
	for _, tc := range []struct{ topic, active string }{
		{"failover-choice-0", "alpha"},
		{"failover-choice-1", "alpha"},
		{"failover-choice-2", "alpha"},
		{"failover-choice-3", "gamma"},
		{"failover-choice-4", "beta"},
		{"failover-choice-5", "beta"},
		{"failover-choice-6", "gamma"},
		{"failover-choice-7", "alpha"},
	} {
		t.Run(tc.topic, func(t *testing.T) {
			t.Parallel()
			c := e.client(t)
			tp := "persistent://public/default/" + tc.topic
			names := []string{"gamma", "alpha", "beta"}
			consumers := make([]pulsar.Consumer, len(names))
			for i, name := range names {
				consumers[i] = subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: sub, Name: name,
					Type: pulsar.Failover, SubscriptionMode: pulsar.NonDurable})
			}
			send(t, producer(t, c, pulsar.ProducerOptions{Topic: tp}), payloads("m-", 1)...)
			if i, _ := firstToReceive(t, consumers...); names[i] != tc.active {
				t.Errorf("%s: active consumer %s, want %s", tc.topic, names[i], tc.active)
			}
		})
	}
}
