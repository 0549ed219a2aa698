package relay_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/alpes/alpes/internal/pgcluster"
	"github.com/alpes/alpes/relay"
)

// A source whose LSNs go backwards must not have its new events taken for
// ones the broker already has. Here a second, fresh cluster is the source
// "orders" after a first one, against the same topics: its commit LSNs are
// below the first cluster's, so with sequence ids from commit LSNs alone and
// producer names from the source name alone the broker drops every one of
// its events as a duplicate, and the relay confirms them.
func TestFreshClusterUnderTheSameSourceName(t *testing.T) {
	ctx := context.Background()
	b := startBroker(t)
	rec := consume(t, b.ServiceURL, b.topic)

	_, firstDSN := ownCluster(t, "orders")
	// Put the first cluster's events well past any LSN the second reaches.
	advanceWAL(t, firstDSN, 3)
	first := startStreamingRelay(t, b, relay.SourceConfig{Name: "orders", DSN: firstDSN, Slot: "orders"})
	ids := insertEvents(ctx, t, newPool(t, firstDSN), b.topic, "first", 0, 20)
	waitFor(t, "the first cluster's events", func() bool { d, _ := rec.count(); return d >= len(ids) })
	if err := first.stop(t); err != nil {
		t.Fatal(err)
	}

	_, secondDSN := ownCluster(t, "orders")
	second := startStreamingRelay(t, b, relay.SourceConfig{Name: "orders", DSN: secondDSN, Slot: "orders"})
	ids = append(ids, insertEvents(ctx, t, newPool(t, secondDSN), b.topic, "second", 0, 20)...)
	assertNoneDropped(t, second, "the second cluster's", 20)
	waitFor(t, "every event of both clusters", func() bool { d, _ := rec.count(); return d >= len(ids) })
	rec.assertExactlyOnce(t, ids)
}

// assertNoneDropped waits for receipts of n new events of whose (a source
// named orders) and fails the test if the broker dropped any as a
// duplicate.
func assertNoneDropped(t *testing.T, r *runningRelay, whose string, n int64) {
	t.Helper()
	waitFor(t, "receipts for "+whose+" events", func() bool {
		l := lagOf(t, r, "orders")
		return l.MessagesPublished+l.DuplicatesDropped >= n
	})
	if l := lagOf(t, r, "orders"); l.DuplicatesDropped != 0 {
		t.Errorf("the broker dropped %d of %s new events as duplicates", l.DuplicatesDropped, whose)
	}
}

// advanceWAL moves the cluster of dsn to a new WAL segment n times, each
// skipping the rest of a 16 MiB segment.
func advanceWAL(t *testing.T, dsn string, n int) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for range n {
		// A switch needs something written since the last one.
		if _, err := conn.Exec(ctx, `SELECT pg_logical_emit_message(false, 'alpes.test', 'advance'), pg_switch_wal()`); err != nil {
			t.Fatal(err)
		}
	}
}

func newPool(t *testing.T, dsn string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// A fail-over to a standby that lagged: the promoted standby continues on a
// new timeline from behind what its former primary had written and the relay
// had published. Its new events must be published, not dropped as
// duplicates of the old primary's.
func TestPromotedLaggingStandby(t *testing.T) {
	ctx := context.Background()
	b := startBroker(t)
	rec := consume(t, b.ServiceURL, b.topic)

	primary, primaryDSN := ownCluster(t, "orders")
	source := relay.SourceConfig{Name: "orders", DSN: primaryDSN, Slot: "orders"}
	onPrimary := startStreamingRelay(t, b, source)
	pool := newPool(t, primaryDSN)
	ids := insertEvents(ctx, t, pool, b.topic, "before", 0, 10)

	standby, err := primary.StartStandby(ctx, pgcluster.Options{Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { standby.Stop() })
	waitReplayed(t, primaryDSN, standby.AdminDSN("orders"))
	if err := standby.Detach(ctx); err != nil {
		t.Fatal(err)
	}

	// What only the primary gets, far ahead in its WAL, published.
	advanceWAL(t, primaryDSN, 2)
	ids = append(ids, insertEvents(ctx, t, pool, b.topic, "lost-primary", 0, 10)...)
	waitFor(t, "the primary's events", func() bool { d, _ := rec.count(); return d >= len(ids) })
	if err := onPrimary.stop(t); err != nil {
		t.Fatal(err)
	}

	if err := standby.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	// Slots are not in a base backup: the operator starts the promoted
	// standby's slot fresh.
	source.DSN, source.StartFresh = standby.AdminDSN("orders"), true
	onStandby := startStreamingRelay(t, b, source)
	ids = append(ids, insertEvents(ctx, t, newPool(t, source.DSN), b.topic, "promoted", 0, 10)...)
	assertNoneDropped(t, onStandby, "the promoted standby's", 10)
	waitFor(t, "every event", func() bool { d, _ := rec.count(); return d >= len(ids) })
	rec.assertExactlyOnce(t, ids)
}

// A disk snapshot restored in place: same cluster, same timeline, WAL
// rewound. Nothing in the source's identity changed, so the broker's state
// under its producer names is ahead of the stream: the relay must stop and
// say so, rather than publish events the broker would drop.
func TestRestoredSnapshotStopsTheSource(t *testing.T) {
	ctx := context.Background()
	b := startBroker(t)
	rec := consume(t, b.ServiceURL, b.topic)

	cluster, dsn := ownCluster(t, "orders")
	source := relay.SourceConfig{Name: "orders", DSN: dsn, Slot: "orders"}
	first := startStreamingRelay(t, b, source)
	ids := insertEvents(ctx, t, newPool(t, dsn), b.topic, "before", 0, 10)
	waitFor(t, "the first events", func() bool { d, _ := rec.count(); return d >= len(ids) })
	if err := first.stop(t); err != nil {
		t.Fatal(err)
	}
	snapshot, err := cluster.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}

	second := startStreamingRelay(t, b, source)
	advanceWAL(t, dsn, 2)
	ids = append(ids, insertEvents(ctx, t, newPool(t, dsn), b.topic, "after-snapshot", 0, 10)...)
	waitFor(t, "the events after the snapshot", func() bool { d, _ := rec.count(); return d >= len(ids) })
	if err := second.stop(t); err != nil {
		t.Fatal(err)
	}

	if err := cluster.RestoreSnapshot(ctx, snapshot); err != nil {
		t.Fatal(err)
	}
	third := startRelay(t, b, source)
	insertEvents(ctx, t, newPool(t, dsn), b.topic, "restored", 0, 10)
	select {
	case <-third.Done():
	case <-time.After(waitTimeout):
		t.Fatalf("the relay streams the rewound source: %+v", third.Lag())
	}
	if !errors.Is(third.Err(), relay.ErrStreamBehindBroker) {
		t.Errorf("the relay ended with %v, want ErrStreamBehindBroker", third.Err())
	}
	l := lagOf(t, third, "orders")
	if l.State != relay.StateStopped {
		t.Errorf("source state %s, want %s", l.State, relay.StateStopped)
	}
	if !strings.Contains(l.Error, "rewound") {
		t.Errorf("the stopped source's error does not say why: %q", l.Error)
	}
	if l.MessagesPublished+l.DuplicatesDropped != 0 {
		t.Errorf("the relay sent %d messages from the rewound source (%d dropped as duplicates)", l.MessagesPublished+l.DuplicatesDropped, l.DuplicatesDropped)
	}
}

// waitReplayed waits until the standby has replayed everything the primary
// had written when called.
func waitReplayed(t *testing.T, primaryDSN, standbyDSN string) {
	t.Helper()
	ctx := context.Background()
	var target string
	if err := queryRow(ctx, primaryDSN, `SELECT pg_current_wal_lsn()::text`, &target); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the standby to replay "+target, func() bool {
		var caughtUp bool
		err := queryRow(ctx, standbyDSN, `SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn`, &caughtUp, target)
		return err == nil && caughtUp
	})
}

func queryRow(ctx context.Context, dsn, sql string, dst any, args ...any) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.QueryRow(ctx, sql, args...).Scan(dst)
}
