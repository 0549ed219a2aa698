package migrations_test

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/alpes/alpes/internal/pgtest"
	"github.com/alpes/alpes/migrations"
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
				 FROM pg_publication p WHERE p.pubname = $1`, migrations.Publication).
				Scan(&ins, &upd, &del, &trunc, &tables)
			if errors.Is(err, pgx.ErrNoRows) {
				t.Fatalf("publication %s does not exist", migrations.Publication)
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

// TestSharedTablesAreIdentical guards the copies of the outbox and inbox
// definitions: every service keeps its whole schema in its own directory, and
// the relay and the consumer framework rely on the copies being the same.
func TestSharedTablesAreIdentical(t *testing.T) {
	ctx := context.Background()
	columns := func(db *pgtest.DB, table string) []string {
		rows, err := db.Pool(t).Query(ctx,
			`SELECT column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '')
			 FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position`, table)
		if err != nil {
			t.Fatal(err)
		}
		cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return cols
	}
	for _, table := range []string{"outbox", "inbox", "apply_progress", "parked_messages"} {
		var first []string
		var firstService string
		for _, service := range migrations.Services {
			db := pgtest.New(t, service)
			cols := columns(db, table)
			if len(cols) == 0 {
				continue // this service has no such table
			}
			if first == nil {
				first, firstService = cols, service
				continue
			}
			if !slices.Equal(cols, first) {
				t.Errorf("%s differs between %s and %s:\n%v\n%v", table, firstService, service, first, cols)
			}
		}
		if first == nil {
			t.Errorf("no service has a %s table", table)
		}
	}
}

func TestUnknownService(t *testing.T) {
	_, err := migrations.NewProvider(&sql.DB{}, "inventory")
	if !errors.Is(err, migrations.ErrUnknownService) {
		t.Fatalf("err = %v, want ErrUnknownService", err)
	}
}
