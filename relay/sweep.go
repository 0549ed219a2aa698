package relay

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// sweepBatch is how many outbox rows one sweep transaction deletes: small
// enough to hold locks and WAL bursts briefly, large enough to keep up.
const sweepBatch = 5000

// sweep deletes outbox rows older than retention, in short batches, until a
// batch comes back short. Only the instance that streams the source sweeps.
//
// Deleting a row never loses an event: logical decoding reads the inserted
// tuple from the WAL, not from the table (docs/adr/0005). Retention only
// bounds how far back `alpes relay replay` can reach.
func sweep(ctx context.Context, conn *pgx.Conn, retention time.Duration) (deleted int64, err error) {
	for {
		tag, err := conn.Exec(ctx, `
			DELETE FROM outbox WHERE id IN (
				SELECT id FROM outbox WHERE created_at < now() - $1::interval
				ORDER BY created_at LIMIT $2)`, retention, sweepBatch)
		if err != nil {
			return deleted, fmt.Errorf("sweeping the outbox: %w", err)
		}
		deleted += tag.RowsAffected()
		if tag.RowsAffected() < sweepBatch || ctx.Err() != nil {
			return deleted, nil
		}
	}
}
