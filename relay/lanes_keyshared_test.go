package relay_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/alpes/alpes/broker/brokertest"
	"github.com/alpes/alpes/internal/pgtest"
	"github.com/alpes/alpes/migrations"
)

// TestBatchesKeepEachAggregateOnOneConsumer: a backlog of many aggregates'
// events drains in batches to a Key_Shared subscription of three consumers.
// Each aggregate's events all reach one consumer, in order, and the
// aggregates spread over the consumers: a batch goes where its lane goes,
// and an aggregate never leaves its lane.
func TestBatchesKeepEachAggregateOnOneConsumer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t, "orders")
	b := startBroker(t)
	writer := db.PoolAs(t, migrations.ServiceRole("orders"))

	type delivery struct {
		consumer, key, payload, orderingKey string
		batched                             bool
	}
	var mu sync.Mutex
	var got []delivery
	client := b.Client(t)
	for i := range 3 {
		name := "consumer-" + strconv.Itoa(i)
		consumer, err := client.Subscribe(pulsar.ConsumerOptions{
			Topic: b.topic, SubscriptionName: "lanes", Type: pulsar.KeyShared, Name: name,
			SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest,
		})
		if err != nil {
			t.Fatal(err)
		}
		brokertest.Consume(t, consumer, func(m pulsar.Message) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, delivery{name, m.Key(), string(m.Payload()), m.OrderingKey(), m.ID().BatchSize() > 1})
		})
	}

	// The backlog is written while no relay runs, so that it drains in
	// batches.
	first := startStreamingRelay(t, b, b.source(db))
	if err := first.stop(t); err != nil {
		t.Fatal(err)
	}
	const keys, perKey = 40, 15
	for k := range keys {
		insertEvents(ctx, t, writer, b.topic, fmt.Sprintf("order-%d", k), 0, perKey)
	}
	startStreamingRelay(t, b, b.source(db))
	waitFor(t, fmt.Sprintf("%d events", keys*perKey), func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= keys*perKey
	})

	mu.Lock()
	defer mu.Unlock()
	owner, lane, next := map[string]string{}, map[string]string{}, map[string]int{}
	consumers, batched := map[string]bool{}, 0
	for _, d := range got {
		if o, ok := owner[d.key]; ok && o != d.consumer {
			t.Fatalf("%s's events reached %s and %s", d.key, o, d.consumer)
		}
		if l, ok := lane[d.key]; ok && l != d.orderingKey || d.orderingKey == "" {
			t.Fatalf("%s's events came with ordering keys %q and %q", d.key, l, d.orderingKey)
		}
		if want := fmt.Sprintf("%s/%d", d.key, next[d.key]); d.payload != want {
			t.Fatalf("%s: %q arrived where %q was due", d.key, d.payload, want)
		}
		owner[d.key], lane[d.key] = d.consumer, d.orderingKey
		next[d.key]++
		consumers[d.consumer] = true
		if d.batched {
			batched++
		}
	}
	if len(got) != keys*perKey {
		t.Errorf("%d deliveries of %d events", len(got), keys*perKey)
	}
	if len(consumers) < 2 {
		t.Errorf("every aggregate went to %v", consumers)
	}
	if batched < len(got)/2 {
		t.Errorf("only %d of %d events came in batches: the test did not exercise batching", batched, len(got))
	}
}
