package bench

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
)

// benchPayload is every backlog row's payload: 128 bytes, a small event.
var benchPayload = strings.Repeat("p", 128)

// benchHeaders are the headers a service writes with every row.
const benchHeaders = `{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}`

// writeBacklog commits n single-row transactions into table (an outbox, or
// the polling baseline's copy of one) and returns the WAL position right
// after the last commit. A DO block commits after each row. The session
// commits asynchronously: the backlog is written quickly, and what is
// measured afterwards only reads it.
func writeBacklog(ctx context.Context, dsn, table, topic string, n int) (pglogrepl.LSN, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `SET synchronous_commit = off`); err != nil {
		return 0, err
	}
	do := fmt.Sprintf(`DO $$
BEGIN
	FOR i IN 1..%d LOOP
		INSERT INTO %s (id, topic, aggregate_id, type, payload, headers)
		VALUES (gen_random_uuid(), %s, 'order-' || (i %% 1000), %s, convert_to(%s, 'UTF8'), %s);
		COMMIT;
	END LOOP;
END $$`, n, pgx.Identifier{table}.Sanitize(), quote(topic), quote(benchType), quote(benchPayload), quote(benchHeaders))
	if _, err := conn.Exec(ctx, do); err != nil {
		return 0, fmt.Errorf("writing the backlog into %s: %w", table, err)
	}
	var end string
	if err := conn.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&end); err != nil {
		return 0, err
	}
	// A synchronous commit flushes the WAL up to it, so that no drain
	// waits for the WAL writer.
	for _, q := range []string{`SET synchronous_commit = on`, `SELECT txid_current()`} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return 0, err
		}
	}
	return pglogrepl.ParseLSN(end)
}

// quote quotes s as an SQL string literal.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
