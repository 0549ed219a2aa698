package relay

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/alpes/alpes/outbox/schema"
)

// sweep deletes outbox rows older than retention, at most batch rows per
// DELETE, each its own transaction, until a batch deletes fewer than batch
// rows or ctx ends (schema.SweepOutbox; run outside a transaction block,
// each execution is its own short transaction). It counts each batch and its rows in stats as it goes, so
// a long sweep shows its progress. Only the instance that streams the source
// sweeps.
//
// Deleting a row never loses an event: logical decoding reads the inserted
// tuple from the WAL, not from the table (docs/adr/0005). Retention only
// bounds how far back `alpes relay replay` can reach.
func sweep(ctx context.Context, conn *pgx.Conn, retention time.Duration, batch int, stats *sourceStats) (deleted int64, err error) {
	for {
		if err := ctx.Err(); err != nil {
			return deleted, err
		}
		tag, err := conn.Exec(ctx, schema.SweepOutbox, retention, batch)
		if err != nil {
			return deleted, fmt.Errorf("sweeping the outbox: %w", err)
		}
		n := tag.RowsAffected()
		deleted += n
		stats.sweepBatches.Add(1)
		stats.swept.Add(n)
		if n < int64(batch) {
			return deleted, nil
		}
	}
}
