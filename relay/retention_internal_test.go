package relay

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/alpes/alpes/internal/pgtest"
	"github.com/alpes/alpes/migrations"
)

// TestSweepDeletesInBoundedBatches: 20,000 rows past the retention, all
// within one minute of created_at, go in DELETEs of at most the default batch
// size, each its own transaction, counted in the source's stats; rows younger
// than the retention stay, and a cancelled sweep deletes nothing. A
// statement-level trigger records what every DELETE removed.
func TestSweepDeletesInBoundedBatches(t *testing.T) {
	const old, young, batch = 20000, 5, DefaultSweepBatch
	ctx := context.Background()
	db := pgtest.New(t, "orders")
	admin := db.Pool(t)
	if _, err := admin.Exec(ctx, `
		CREATE TABLE sweep_log (seq bigserial PRIMARY KEY, xid bigint NOT NULL, n bigint NOT NULL);
		CREATE FUNCTION log_sweep() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
		BEGIN
			INSERT INTO sweep_log (xid, n) SELECT txid_current(), count(*) FROM old_rows;
			RETURN NULL;
		END $$;
		CREATE TRIGGER log_sweep AFTER DELETE ON outbox REFERENCING OLD TABLE AS old_rows
			FOR EACH STATEMENT EXECUTE FUNCTION log_sweep();
		INSERT INTO outbox (id, topic, aggregate_id, type, payload, created_at)
			SELECT gen_random_uuid(), 'persistent://alpes/test/events.v1', 'order-old', 'alpes.test.v1.Probe', 'old',
				now() - interval '2 hours' + g * interval '1 millisecond'
			FROM generate_series(1, 20000) g;
		INSERT INTO outbox (id, topic, aggregate_id, type, payload, created_at)
			SELECT gen_random_uuid(), 'persistent://alpes/test/events.v1', 'order-new', 'alpes.test.v1.Probe', 'new', now()
			FROM generate_series(1, 5) g;`); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, db.DSNAs(migrations.RelayRole))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)

	stats := newSourceStats()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if n, err := sweep(cancelled, conn, time.Hour, batch, stats); n != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled sweep deleted %d rows and returned %v, want 0 and context.Canceled", n, err)
	}

	deleted, err := sweep(ctx, conn, time.Hour, batch, stats)
	if err != nil {
		t.Fatal(err)
	}
	if deleted != old {
		t.Errorf("sweep deleted %d rows, want %d", deleted, old)
	}

	rows, _ := admin.Query(ctx, `SELECT xid, n FROM sweep_log ORDER BY seq`)
	counts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]int64, error) {
		var v [2]int64
		return v, r.Scan(&v[0], &v[1])
	})
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	xids := map[int64]bool{}
	for i, c := range counts {
		if c[1] > batch {
			t.Errorf("DELETE %d removed %d rows, want at most %d", i+1, c[1], batch)
		}
		sum += c[1]
		xids[c[0]] = true
	}
	if sum != old {
		t.Errorf("the DELETEs removed %d rows in all, want %d", sum, old)
	}
	if want := old/batch + 1; len(counts) != want { // 20 full batches and the short one that ends the sweep
		t.Errorf("%d DELETE statements, want %d: %v", len(counts), want, counts)
	}
	if l := stats.lag(SourceConfig{}, time.Now()); l.OutboxSwept != old || l.OutboxSweepBatches != int64(len(counts)) {
		t.Errorf("lag reports %d rows swept in %d batches, want %d in %d", l.OutboxSwept, l.OutboxSweepBatches, old, len(counts))
	}
	if len(xids) != len(counts) {
		t.Errorf("%d DELETE statements in %d transactions, want one transaction each", len(counts), len(xids))
	}
	var left, leftYoung int
	if err := admin.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE aggregate_id = 'order-new') FROM outbox`).Scan(&left, &leftYoung); err != nil {
		t.Fatal(err)
	}
	if left != young || leftYoung != young {
		t.Errorf("%d rows left (%d young), want the %d young ones", left, leftYoung, young)
	}
}
