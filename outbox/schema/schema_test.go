package schema_test

import (
	"context"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/alpes/alpes/internal/pgtest"
	"github.com/alpes/alpes/migrations"
	"github.com/alpes/alpes/outbox/schema"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// columns returns table's columns in their order, as Postgres has them.
func columns(t *testing.T, db *pgxpool.Pool, table string) []string {
	t.Helper()
	rows, err := db.Query(context.Background(), `
		SELECT attname FROM pg_attribute
		WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped
		ORDER BY attnum`, table)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

// TestNamesAndStatementsMatchTheMigratedOutbox migrates every producing
// service's database and holds the names and statements of this package to
// what Postgres has: the outbox's columns in order, the publication streaming
// inserts of the outbox and nothing else, and every statement preparing.
func TestNamesAndStatementsMatchTheMigratedOutbox(t *testing.T) {
	for _, service := range migrations.Producers {
		t.Run(service, func(t *testing.T) {
			db := pgtest.New(t, service).Pool(t)
			ctx := context.Background()
			if got := columns(t, db, schema.OutboxTable); !slices.Equal(got, schema.OutboxColumns) {
				t.Errorf("%s has columns %v; schema.OutboxColumns = %v", schema.OutboxTable, got, schema.OutboxColumns)
			}
			var tables []string
			var inserts, others bool
			err := db.QueryRow(ctx, `
				SELECT array(SELECT tablename::text FROM pg_publication_tables WHERE pubname = $1),
				       pubinsert, pubupdate OR pubdelete OR pubtruncate
				FROM pg_publication WHERE pubname = $1`, schema.Publication).Scan(&tables, &inserts, &others)
			if err != nil {
				t.Fatalf("reading publication %s: %v", schema.Publication, err)
			}
			if !slices.Equal(tables, []string{schema.OutboxTable}) || !inserts || others {
				t.Errorf("publication %s: tables %v, inserts %v, other changes %v; want only inserts of %s",
					schema.Publication, tables, inserts, others, schema.OutboxTable)
			}
			conn, err := db.Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Release()
			for name, sql := range map[string]string{
				"InsertOutbox": schema.InsertOutbox, "SelectOutboxWindow": schema.SelectOutboxWindow,
				"SweepOutbox": schema.SweepOutbox, "OutboxHasRows": schema.OutboxHasRows,
			} {
				if _, err := conn.Conn().Prepare(ctx, name, sql); err != nil {
					t.Errorf("%s does not prepare on the migrated outbox: %v", name, err)
				}
			}
		})
	}
}

// TestConsumingTablesExistUnderTheirNames checks that every service's
// migrations create the inbox, apply_progress and parked_messages under the
// names the code uses.
func TestConsumingTablesExistUnderTheirNames(t *testing.T) {
	for _, service := range migrations.Services {
		t.Run(service, func(t *testing.T) {
			db := pgtest.New(t, service).Pool(t)
			for _, table := range []string{schema.InboxTable, schema.ProgressTable, schema.ParkedTable} {
				if len(columns(t, db, table)) == 0 {
					t.Errorf("%s's migrations create no table %s", service, table)
				}
			}
		})
	}
}
