package migrations_test

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/alpes/alpes/internal/pgtest"
	"github.com/alpes/alpes/migrations"
	"github.com/alpes/alpes/outbox/schema"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// provider opens a goose provider for service on db, closed with the test.
func provider(t *testing.T, db *pgtest.DB, service string) *goose.Provider {
	t.Helper()
	cfg, err := pgx.ParseConfig(db.DSN())
	if err != nil {
		t.Fatal(err)
	}
	sqlDB := stdlib.OpenDB(*cfg)
	t.Cleanup(func() { sqlDB.Close() })
	p, err := migrations.NewProvider(sqlDB, service)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// userTables lists the tables of the public schema, goose's own excluded.
func userTables(t *testing.T, db *pgtest.DB) []string {
	t.Helper()
	ctx := context.Background()
	rows, err := db.Pool(t).Query(ctx,
		`SELECT table_name FROM information_schema.tables
		 WHERE table_schema = 'public' AND table_name <> 'goose_db_version' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return tables
}

func TestUpDownUp(t *testing.T) {
	for _, service := range migrations.Services {
		t.Run(service, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := pgtest.NewEmpty(t)
			p := provider(t, db, service)
			sources := p.ListSources()
			latest := sources[len(sources)-1].Version

			if _, err := p.Up(ctx); err != nil {
				t.Fatalf("first up: %v", err)
			}
			assertVersion(t, p, latest)
			tablesAfterUp := userTables(t, db)
			if !slices.Contains(tablesAfterUp, "inbox") {
				t.Errorf("tables after up = %v, want an inbox", tablesAfterUp)
			}
			if slices.Contains(migrations.Producers, service) != slices.Contains(tablesAfterUp, "outbox") {
				t.Errorf("tables after up = %v: an outbox exactly in producers %v", tablesAfterUp, migrations.Producers)
			}

			if _, err := p.DownTo(ctx, 0); err != nil {
				t.Fatalf("down to 0: %v", err)
			}
			assertVersion(t, p, 0)
			if left := userTables(t, db); len(left) != 0 {
				t.Errorf("tables left after down to 0: %v", left)
			}

			if _, err := p.Up(ctx); err != nil {
				t.Fatalf("second up: %v", err)
			}
			assertVersion(t, p, latest)
			if again := userTables(t, db); !slices.Equal(again, tablesAfterUp) {
				t.Errorf("tables after second up = %v, want %v", again, tablesAfterUp)
			}
		})
	}
}

func assertVersion(t *testing.T, p *goose.Provider, want int64) {
	t.Helper()
	got, err := p.GetDBVersion(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("database version = %d, want %d", got, want)
	}
}

func TestCatalogueIsSeeded(t *testing.T) {
	db := pgtest.New(t, "orders")
	var n int
	var badCurrency int
	err := db.Pool(t).QueryRow(context.Background(),
		`SELECT count(*), count(*) FILTER (WHERE currency <> 'EUR' OR price_minor <= 0) FROM products`).Scan(&n, &badCurrency)
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 || badCurrency != 0 {
		t.Errorf("catalogue: %d products, %d with odd prices; want at least 10, none odd", n, badCurrency)
	}
}

func TestOutboxPublicationPublishesInsertsOnly(t *testing.T) {
	for _, service := range migrations.Producers {
		t.Run(service, func(t *testing.T) {
			t.Parallel()
			db := pgtest.New(t, service)
			var ins, upd, del, trunc bool
			var tables []string
			err := db.Pool(t).QueryRow(context.Background(),
				`SELECT p.pubinsert, p.pubupdate, p.pubdelete, p.pubtruncate,
				        array(SELECT tablename::text FROM pg_publication_tables t WHERE t.pubname = p.pubname)
				 FROM pg_publication p WHERE p.pubname = $1`, schema.Publication).
				Scan(&ins, &upd, &del, &trunc, &tables)
			if errors.Is(err, pgx.ErrNoRows) {
				t.Fatalf("publication %s does not exist", schema.Publication)
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(tables, []string{"outbox"}) {
				t.Errorf("publication tables = %v, want [outbox]", tables)
			}
			if !ins || upd || del || trunc {
				t.Errorf("publication publishes insert=%t update=%t delete=%t truncate=%t; want inserts only", ins, upd, del, trunc)
			}
		})
	}
}

// TestSharedPartsAreRenderedForEachService checks that every service's
// migrations hold the shared parts it needs under the versions it has them
// at, granted to its own role, with nothing left of the templates.
func TestSharedPartsAreRenderedForEachService(t *testing.T) {
	want := map[string][]string{
		"bff":       {"00001_roles.sql", "00002_outbox.sql", "00003_inbox.sql", "00006_parked.sql"},
		"orders":    {"00001_roles.sql", "00002_outbox.sql", "00003_inbox.sql", "00006_parked.sql"},
		"payments":  {"00001_roles.sql", "00002_outbox.sql", "00003_inbox.sql", "00005_parked.sql"},
		"reporting": {"00001_roles.sql", "00002_inbox.sql", "00004_parked.sql"},
	}
	for _, service := range migrations.Services {
		fsys, err := migrations.FS(service)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range want[service] {
			b, err := fs.ReadFile(fsys, name)
			if err != nil {
				t.Errorf("%s: %v", service, err)
				continue
			}
			sql := string(b)
			if !strings.Contains(sql, " TO "+migrations.ServiceRole(service)) || strings.Contains(sql, "{{") {
				t.Errorf("%s/%s is not rendered for %s:\n%s", service, name, migrations.ServiceRole(service), sql)
			}
			isProducer := slices.Contains(migrations.Producers, service)
			if name == "00001_roles.sql" && strings.Contains(sql, migrations.RelayRole) != isProducer {
				t.Errorf("%s/%s: the relay's role is there: %t, want %t", service, name, !isProducer, isProducer)
			}
		}
	}
}

func TestUnknownService(t *testing.T) {
	_, err := migrations.NewProvider(&sql.DB{}, "inventory")
	if !errors.Is(err, migrations.ErrUnknownService) {
		t.Fatalf("err = %v, want ErrUnknownService", err)
	}
}
