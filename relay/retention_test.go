package relay_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/alpes/alpes/migrations"
	"github.com/alpes/alpes/outbox/eventmeta"
	"github.com/alpes/alpes/relay"
)

// TestSweepDeletesOnlyRowsPastRetention: rows older than the retention go,
// younger ones stay, and every row is published either way.
func TestSweepDeletesOnlyRowsPastRetention(t *testing.T) {
	ctx := context.Background()
	db, broker, rec := ordersToBroker(t)
	src := broker.source(db)
	src.OutboxRetention = time.Hour
	src.SweepInterval = 100 * time.Millisecond
	r := startStreamingRelay(t, broker, src)

	admin := db.Pool(t)
	for i := range 12 {
		if _, err := admin.Exec(ctx, `INSERT INTO outbox (id, topic, aggregate_id, type, payload, created_at)
			VALUES ($1, $2, 'order-old', 'alpes.test.v1.Probe', 'old', now() - interval '2 hours' + $3 * interval '1 second')`,
			uuid.NewString(), broker.topic, i); err != nil {
			t.Fatal(err)
		}
	}
	insertEvents(ctx, t, db.PoolAs(t, migrations.ServiceRole("orders")), broker.topic, "order-new", 0, 5)
	waitFor(t, "17 events", func() bool { _, n := rec.count(); return n >= 17 })
	waitFor(t, "the old rows swept", func() bool {
		var old int
		admin.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE aggregate_id = 'order-old'`).Scan(&old)
		return old == 0
	})
	var young int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE aggregate_id = 'order-new'`).Scan(&young); err != nil {
		t.Fatal(err)
	}
	if young != 5 {
		t.Errorf("%d young rows left, want 5", young)
	}
	if l := lagOf(t, r, "orders"); l.OutboxSwept != 12 || l.OutboxSweepBatches < 1 {
		t.Errorf("lag reports %d rows swept in %d batches, want 12 in at least 1", l.OutboxSwept, l.OutboxSweepBatches)
	}
}

// TestReplayRepublishesAWindowWithTheSameEventIDs.
func TestReplayRepublishesAWindowWithTheSameEventIDs(t *testing.T) {
	ctx := context.Background()
	db, broker, rec := ordersToBroker(t)
	startStreamingRelay(t, broker, broker.source(db))
	writer := db.PoolAs(t, migrations.ServiceRole("orders"))

	insertEvents(ctx, t, writer, broker.topic, "order-1", 0, 5)
	since := time.Now()
	window := insertEvents(ctx, t, writer, broker.topic, "order-1", 5, 5)
	window = append(window, insertEvents(ctx, t, writer, broker.topic, "order-2", 0, 5)...)
	waitFor(t, "15 events", func() bool { _, n := rec.count(); return n >= 15 })

	report, err := relay.Replay(ctx, relay.ReplayConfig{
		Source: "orders", DSN: db.DSNAs(migrations.RelayRole), Since: since, Pulsar: relay.PulsarConfig{URL: broker.ServiceURL},
	})
	if err != nil {
		t.Fatal(err)
	}
	if report.Total != 10 || report.Topics[broker.topic] != 10 {
		t.Fatalf("replay report %+v, want 10 messages on %s", report, broker.topic)
	}
	waitFor(t, "25 deliveries", func() bool { _, n := rec.count(); return n >= 25 })

	rec.mu.Lock()
	defer rec.mu.Unlock()
	inWindow := map[string]bool{}
	for _, id := range window {
		inWindow[id] = true
		if rec.byID[id] != 2 {
			t.Errorf("event %s delivered %d times, want twice (stream and replay)", id, rec.byID[id])
		}
	}
	streamedLane := map[string]string{} // event id → the streamed message's ordering key
	for _, m := range rec.msgs {
		if m.Properties()[eventmeta.ReplayedAt] == "" {
			streamedLane[m.Properties()[eventmeta.EventID]] = m.OrderingKey()
		}
	}
	var replayedOrder []string
	for _, m := range rec.msgs {
		props := m.Properties()
		if props[eventmeta.ReplayedAt] == "" {
			continue
		}
		if !inWindow[props[eventmeta.EventID]] || props[eventmeta.CommitLSN] != "" || props[eventmeta.CommitTime] == "" {
			t.Errorf("replayed message outside the window or with wrong properties: %v", props)
		}
		// Placed on a Key_Shared subscription as the streamed one was: by
		// the same lane, in an entry of its own (a batch of several
		// orders would go where its first message's order goes).
		if lane := streamedLane[props[eventmeta.EventID]]; m.OrderingKey() != lane || lane == "" || m.ID().BatchSize() > 1 {
			t.Errorf("replayed %s: ordering key %q in an entry of %d, streamed with ordering key %q", m.Key(), m.OrderingKey(), m.ID().BatchSize(), lane)
		}
		if m.Key() == "order-1" {
			replayedOrder = append(replayedOrder, string(m.Payload()))
		}
	}
	for i, p := range replayedOrder {
		if want := fmt.Sprintf("order-1/%d", 5+i); p != want {
			t.Errorf("replayed order-1 message %d is %q, want %q", i, p, want)
		}
	}
}

// A retained row too large for the broker (or with a topic that is not one)
// cannot be replayed. The replay publishes everything else, names the row
// and why, and leaves it in the outbox; it does not stop at the first.
func TestReplaySkipsRowsItCannotPublish(t *testing.T) {
	ctx := context.Background()
	db, broker, rec := ordersToBroker(t)
	writer := db.PoolAs(t, migrations.ServiceRole("orders"))

	since := time.Now()
	ids := insertEvents(ctx, t, writer, broker.topic, "order-1", 0, 3)
	huge := uuid.NewString()
	if _, err := writer.Exec(ctx, `INSERT INTO outbox (id, topic, aggregate_id, type, payload) VALUES ($1, $2, 'order-2', 'alpes.test.v1.Probe', $3)`,
		huge, broker.topic, make([]byte, relay.DefaultMaxMessageBytes+1)); err != nil {
		t.Fatal(err)
	}
	ids = append(ids, insertEvents(ctx, t, writer, broker.topic, "order-1", 3, 3)...)

	report, err := relay.Replay(ctx, relay.ReplayConfig{
		Source: "orders", DSN: db.DSNAs(migrations.RelayRole), Since: since, Pulsar: relay.PulsarConfig{URL: broker.ServiceURL},
	})
	if err != nil {
		t.Fatal(err)
	}
	if report.Total != 6 || len(report.Skipped) != 1 || report.Skipped[0].EventID != huge || !strings.Contains(report.Skipped[0].Reason, "exceeds the broker's limit") {
		t.Fatalf("replay report %+v, want 6 messages and the huge row skipped", report)
	}
	waitFor(t, "6 deliveries", func() bool { _, n := rec.count(); return n >= 6 })
	rec.assertExactlyOnce(t, ids)
}
