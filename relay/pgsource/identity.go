package pgsource

import (
	"context"
	"fmt"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
)

// Identity says which stream of WAL a source is: LSNs only order events
// within one cluster (system identifier), on one timeline, and a source is
// one database of it. A cluster restored from a dump or created afresh has
// another system identifier; a promoted standby or a point-in-time restore
// continues on a new timeline, from a position that may be behind what the
// old one reached.
type Identity struct {
	SystemID string
	Timeline int32
	Database string
	// WALFlush is the server's WAL flush position when it was asked: every
	// transaction the source has committed so far ends at or before it.
	WALFlush LSN
}

func (id Identity) String() string {
	return fmt.Sprintf("system %s, timeline %d, database %s", id.SystemID, id.Timeline, id.Database)
}

// Identify asks the server of a replication connection who it is
// (IDENTIFY_SYSTEM).
func Identify(ctx context.Context, repl *pgconn.PgConn) (Identity, error) {
	r, err := pglogrepl.IdentifySystem(ctx, repl)
	if err != nil {
		return Identity{}, fmt.Errorf("identifying the source: %w", err)
	}
	return Identity{SystemID: r.SystemID, Timeline: r.Timeline, Database: r.DBName, WALFlush: LSN(r.XLogPos)}, nil
}
