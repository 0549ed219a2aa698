package pgtest_test

import (
	"context"
	"testing"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/alpes/alpes/internal/pgtest"
	"github.com/alpes/alpes/outbox/schema"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestDatabasesAreMigratedAndIsolated(t *testing.T) {
	ctx := context.Background()
	a, b := pgtest.New(t, "orders"), pgtest.New(t, "orders")
	if a.Name == b.Name {
		t.Fatalf("two tests share database %s", a.Name)
	}
	if _, err := a.Pool(t).Exec(ctx, `DELETE FROM products`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := b.Pool(t).QueryRow(ctx, `SELECT count(*) FROM products`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Error("a change in one test database showed in another")
	}
}

// TestCleanupDropsADatabaseWithAnActiveSlot leaves a streaming replication
// connection and a permanent slot behind; the cleanup must still drop the
// database (it fails the test otherwise).
func TestCleanupDropsADatabaseWithAnActiveSlot(t *testing.T) {
	ctx := context.Background()
	// Cleanups run last-registered first: the database is dropped while the
	// replication connection is still streaming, and only then is it closed.
	var conn *pgconn.PgConn
	t.Cleanup(func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	})
	db := pgtest.New(t, "payments")
	conn, err := pgconn.Connect(ctx, db.ReplicationDSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	slot, err := pglogrepl.CreateReplicationSlot(ctx, conn, db.Name, "pgoutput", pglogrepl.CreateReplicationSlotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lsn, _ := pglogrepl.ParseLSN(slot.ConsistentPoint)
	if err := pglogrepl.StartReplication(ctx, conn, db.Name, lsn, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names '" + schema.Publication + "'"},
	}); err != nil {
		t.Fatal(err)
	}
}

func TestNewEmptyHasNoSchema(t *testing.T) {
	db := pgtest.NewEmpty(t)
	var n int
	if err := db.Pool(t).QueryRow(context.Background(),
		`SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("empty database has %d tables", n)
	}
}
