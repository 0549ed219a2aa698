package pgsource_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/alpes/alpes/internal/pgcluster"
	"github.com/alpes/alpes/internal/pgtest"
	"github.com/alpes/alpes/migrations"
	"github.com/alpes/alpes/outbox/schema"
	"github.com/alpes/alpes/relay/pgsource"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestPreflight(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name  string
		setup string // run as superuser first
		role  string
		want  string // in the error; "" means it passes
	}{
		{"the relay role on a migrated database", "", migrations.RelayRole, ""},
		{"a role without REPLICATION", "", migrations.ServiceRole("orders"), "lacks the REPLICATION attribute"},
		{"no publication", "DROP PUBLICATION alpes_outbox", migrations.RelayRole, `publication "alpes_outbox" does not exist`},
		{"a publication without the outbox", "ALTER PUBLICATION alpes_outbox DROP TABLE outbox", migrations.RelayRole, "does not include the outbox table"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db := pgtest.New(t, "orders")
			if c.setup != "" {
				if _, err := db.Pool(t).Exec(ctx, c.setup); err != nil {
					t.Fatal(err)
				}
			}
			conn, err := pgx.Connect(ctx, db.DSNAs(c.role))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			warnings, err := pgsource.Preflight(ctx, conn, schema.Publication)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("want success, got %v", err)
			case c.want != "" && (!errors.Is(err, pgsource.ErrPreflight) || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("err = %v, want ErrPreflight saying %q", err, c.want)
			}
			if len(warnings) != 0 {
				t.Errorf("warnings %v: the test cluster caps max_slot_wal_keep_size", warnings)
			}
		})
	}
}

// TestPreflightWarnsAboutUnlimitedWALRetention runs its own cluster: the
// setting is cluster-wide and the shared one caps it.
func TestPreflightWarnsAboutUnlimitedWALRetention(t *testing.T) {
	ctx := context.Background()
	c, err := pgcluster.Start(ctx, pgcluster.Options{Settings: map[string]string{"max_slot_wal_keep_size": "-1"}})
	if err != nil {
		if testing.Short() && errors.Is(err, pgcluster.ErrNoBinaries) {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	cfg, err := pgx.ParseConfig(c.AdminDSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	p, err := migrations.NewProvider(db, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, c.DSN(migrations.RelayRole, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	warnings, err := pgsource.Preflight(ctx, conn, schema.Publication)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "max_slot_wal_keep_size is unlimited") {
		t.Errorf("warnings = %v", warnings)
	}
}
