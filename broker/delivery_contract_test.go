package broker_test

import (
	"slices"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
)

// What consumers rely on from delivery, pinned on both brokers: where a
// subscription resumes after a consumer dies holding unacknowledged
// messages, and the redelivery counts messages carry. Key_Shared's
// guarantees under changing consumers are in keyshared_churn_test.go.

// TestUnackedMessagesReturnAfterConsumerCrash: a client that dies with
// messages received but not acknowledged loses nothing. The next consumer
// of the subscription gets exactly the unacknowledged ones (individual
// acknowledgements, holes included, are kept), in order.
func TestUnackedMessagesReturnAfterConsumerCrash(t *testing.T) {
	for _, typ := range []pulsar.SubscriptionType{pulsar.Exclusive, pulsar.Failover, pulsar.Shared, pulsar.KeyShared} {
		t.Run(subTypeName(typ), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			tp := topic(t)
			opts := pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", Type: typ, AckWithResponse: true}
			doomed := e.client(t)
			cs := subscribe(t, doomed, opts)
			p := producer(t, e.client(t), pulsar.ProducerOptions{Topic: tp, DisableBatching: true})
			send(t, p, payloads("m-", 6)...)
			for i := range 5 {
				m := receive(t, cs)
				if got := string(m.Payload()); got != "m-"+itoa(i) {
					t.Fatalf("got %q, want m-%d", got, i)
				}
				if i == 0 || i == 2 {
					if err := cs.Ack(m); err != nil { // with a response: acknowledged once it returns
						t.Fatal(err)
					}
				}
			}
			doomed.Close() // without acknowledging m-1, m-3, m-4

			next := subscribe(t, e.client(t), opts)
			var got []string
			for range 4 {
				m := receive(t, next)
				got = append(got, string(m.Payload()))
				next.Ack(m)
			}
			if want := []string{"m-1", "m-3", "m-4", "m-5"}; !slices.Equal(got, want) {
				t.Fatalf("after the crash the subscription delivered %v, want %v", got, want)
			}
			expectNothing(t, next, 200*time.Millisecond)
		})
	}
}

func subTypeName(typ pulsar.SubscriptionType) string {
	return [...]string{pulsar.Exclusive: "Exclusive", pulsar.Shared: "Shared", pulsar.Failover: "Failover",
		pulsar.KeyShared: "KeyShared"}[typ]
}

// TestRedeliveryCounts pins Message.RedeliveryCount. Shared and
// Key_Shared subscriptions count negative acknowledgements; a consumer
// leaving with unacknowledged messages does not count (they come to the
// next consumer with the count they had), and the counts are forgotten
// once the subscription has no consumer at all (Pulsar keeps them in
// memory, per dispatcher). Exclusive and Failover subscriptions keep no
// count: always 0.
func TestRedeliveryCounts(t *testing.T) {
	for _, typ := range []pulsar.SubscriptionType{pulsar.Shared, pulsar.KeyShared, pulsar.Exclusive, pulsar.Failover} {
		t.Run(subTypeName(typ), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			c := e.client(t)
			tp := topic(t)
			opts := pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", Type: typ,
				NackRedeliveryDelay: 20 * time.Millisecond}
			counted := typ == pulsar.Shared || typ == pulsar.KeyShared
			want := func(n uint32) uint32 {
				if counted {
					return n
				}
				return 0
			}
			expect := func(cs pulsar.Consumer, count uint32, when string) pulsar.Message {
				t.Helper()
				m := receive(t, cs)
				if string(m.Payload()) != "m-0" || m.RedeliveryCount() != count {
					t.Fatalf("%s: %q with redelivery count %d, want m-0 with %d", when, m.Payload(), m.RedeliveryCount(), count)
				}
				return m
			}
			first, err := c.Subscribe(opts)
			if err != nil {
				t.Fatal(err)
			}
			send(t, producer(t, c, pulsar.ProducerOptions{Topic: tp}), payloads("m-", 1)...)
			first.Nack(expect(first, 0, "first delivery"))
			first.Nack(expect(first, want(1), "after a nack"))
			expect(first, want(2), "after two nacks")

			if !counted {
				first.Close()
				expect(subscribe(t, c, opts), 0, "after the consumer left")
				return
			}
			// A second consumer joins; the first leaves without acking.
			second := subscribe(t, c, opts)
			first.Close()
			m := expect(second, 2, "after the holder left")
			second.Nack(m)
			expect(second, 3, "after a nack by the new consumer")
			second.Close()
			// No consumer left: the subscription forgets the count.
			expect(subscribe(t, c, opts), 0, "after every consumer left")
		})
	}
}
