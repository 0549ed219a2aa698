package relay_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/alpes/alpes/migrations"
)

// TestEveryRowArrivesOnceInCommitOrder: concurrent writers, each owning some
// keys; every outbox row arrives exactly once and each key's rows arrive in
// the order they were committed.
func TestEveryRowArrivesOnceInCommitOrder(t *testing.T) {
	ctx := context.Background()
	db, broker, rec := ordersToBroker(t)
	startStreamingRelay(t, broker, broker.source(db))

	writer := db.PoolAs(t, migrations.ServiceRole("orders"))
	const writers, keysPerWriter, eventsPerKey = 8, 5, 20
	var mu sync.Mutex
	var ids []string
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for k := range keysPerWriter {
				got := insertEvents(ctx, t, writer, broker.topic, fmt.Sprintf("order-%d-%d", w, k), 0, eventsPerKey)
				mu.Lock()
				ids = append(ids, got...)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	want := writers * keysPerWriter * eventsPerKey
	waitFor(t, fmt.Sprintf("%d events", want), func() bool { _, total := rec.count(); return total >= want })
	rec.assertExactlyOnce(t, ids)
	rec.assertPerKeyOrder(t)
}

// TestRestartedRelaySendsNothingTwice: a relay publishes but never tells
// Postgres (its status interval is longer than the test), so the next relay
// streams everything again. The broker must drop all of it as duplicates.
func TestRestartedRelaySendsNothingTwice(t *testing.T) {
	ctx := context.Background()
	db, broker, rec := ordersToBroker(t)
	writer := db.PoolAs(t, migrations.ServiceRole("orders"))

	src := broker.source(db)
	src.StatusInterval = 1 << 40 // never within the test
	first := startStreamingRelay(t, broker, src)
	ids := insertEvents(ctx, t, writer, broker.topic, "order-a", 0, 50)
	waitFor(t, "first 50 events", func() bool { _, total := rec.count(); return total >= 50 })
	if err := first.stop(t); err != nil {
		t.Fatalf("first relay: %v", err)
	}

	second := startStreamingRelay(t, broker, broker.source(db))
	ids = append(ids, insertEvents(ctx, t, writer, broker.topic, "order-a", 50, 10)...)
	waitFor(t, "60 events", func() bool { _, total := rec.count(); return total >= 60 })
	waitFor(t, "the re-sent 50 dropped as duplicates", func() bool {
		return lagOf(t, second, "orders").DuplicatesDropped >= 50
	})
	// Receipt callbacks may still be counting when the consumer has the
	// messages: wait for the count, then check it did not overshoot.
	waitFor(t, "10 new messages published", func() bool { return lagOf(t, second, "orders").MessagesPublished >= 10 })
	if l := lagOf(t, second, "orders"); l.MessagesPublished != 10 {
		t.Errorf("second relay published %d new messages, want 10", l.MessagesPublished)
	}
	rec.assertExactlyOnce(t, ids)
	rec.assertPerKeyOrder(t)
}
