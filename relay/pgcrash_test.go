package relay_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/alpes/alpes/internal/pgcluster"
	"github.com/alpes/alpes/migrations"
	"github.com/alpes/alpes/relay"
)

// TestPostgresCrashMidStream crashes Postgres (immediate shutdown, crash
// recovery on start) twice while rows stream. The relay reconnects and
// continues from the slot's confirmed position: every row in the outbox
// arrives exactly once, and every insert Postgres acknowledged is there.
func TestPostgresCrashMidStream(t *testing.T) {
	ctx := context.Background()
	cluster, dsn := ownCluster(t, "orders")
	broker := startBroker(t)
	rec := consume(t, broker.ServiceURL, broker.topic)
	r := startStreamingRelay(t, broker, relay.SourceConfig{
		Name: "orders", DSN: cluster.DSN(migrations.RelayRole, "orders"),
	})

	writer, err := pgxpool.New(ctx, cluster.DSN(migrations.ServiceRole("orders"), "orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	var mu sync.Mutex
	var acknowledged []string
	write := func(n int) {
		for i := range n {
			id := uuid.NewString()
			_, err := writer.Exec(ctx, `INSERT INTO outbox (id, topic, aggregate_id, type, payload) VALUES ($1, $2, 'order-1', 'alpes.test.v1.Probe', $3)`,
				id, broker.topic, []byte(fmt.Sprint(i)))
			if err == nil {
				mu.Lock()
				acknowledged = append(acknowledged, id)
				mu.Unlock()
			}
		}
	}

	write(50)
	for range 2 {
		done := make(chan struct{})
		go func() { defer close(done); write(100) }()
		if err := cluster.Restart(ctx, true); err != nil {
			t.Fatal(err)
		}
		<-done
		r.waitState(t, relay.StateStreaming)
	}
	write(50)

	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	rows, err := admin.Query(ctx, `SELECT id::text FROM outbox`)
	if err != nil {
		t.Fatal(err)
	}
	inOutbox, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	present := map[string]bool{}
	for _, id := range inOutbox {
		present[id] = true
	}
	for _, id := range acknowledged {
		if !present[id] {
			t.Errorf("acknowledged insert %s is not in the outbox after the crashes", id)
		}
	}
	waitFor(t, fmt.Sprintf("%d events", len(inOutbox)), func() bool { distinct, _ := rec.count(); return distinct >= len(inOutbox) })
	rec.assertExactlyOnce(t, inOutbox)
}

// ownCluster starts a durable cluster of the test's own (crash tests must
// not take the shared one down) with one migrated database for service, and
// returns it with the database's superuser DSN. settings are ALTER SYSTEM SET
// clauses ("wal_sender_timeout = '2s'"), applied and reloaded first.
func ownCluster(t *testing.T, service string, settings ...string) (*pgcluster.Cluster, string) {
	t.Helper()
	ctx := context.Background()
	c, err := pgcluster.Start(ctx, pgcluster.Options{Durable: true})
	if errors.Is(err, pgcluster.ErrNoBinaries) && testing.Short() {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	if err := migrations.CreateAndMigrate(ctx, c.AdminDSN, service, service); err != nil {
		t.Fatal(err)
	}
	if len(settings) > 0 {
		admin, err := pgx.Connect(ctx, c.AdminDSN(service))
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close(ctx)
		for _, setting := range settings {
			if _, err := admin.Exec(ctx, "ALTER SYSTEM SET "+setting); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := admin.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
			t.Fatal(err)
		}
	}
	return c, c.AdminDSN(service)
}
