package migrations_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/alpes/alpes/internal/pgtest"
	"github.com/alpes/alpes/migrations"
)

// TestCreateAndMigrateIsIdempotent creates and migrates a database under a
// name of its own, then does it again, as `alpes dev` does over a kept data
// directory: the second run finds the database and has nothing to apply.
func TestCreateAndMigrateIsIdempotent(t *testing.T) {
	ctx := context.Background()
	c := pgtest.NewEmpty(t).Cluster()
	const name = "create_and_migrate_orders"
	t.Cleanup(func() {
		admin, err := pgx.Connect(ctx, c.AdminDSN(migrations.MaintenanceDatabase))
		if err != nil {
			t.Errorf("dropping %s: %v", name, err)
			return
		}
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("dropping %s: %v", name, err)
		}
	})
	for run := 1; run <= 2; run++ {
		if err := migrations.CreateAndMigrate(ctx, c.AdminDSN, name, "orders"); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
	}
	conn, err := pgx.Connect(ctx, c.AdminDSN(name))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var products int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM products`).Scan(&products); err != nil || products == 0 {
		t.Errorf("the migrated database holds %d products (%v), want the seeded catalogue", products, err)
	}
	if err := migrations.CreateAndMigrate(ctx, c.AdminDSN, name, "nosuch"); !errors.Is(err, migrations.ErrUnknownService) {
		t.Errorf("an unknown service: err = %v, want ErrUnknownService", err)
	}
}
