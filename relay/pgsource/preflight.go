package pgsource

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/alpes/alpes/outbox/schema"
)

// ErrPreflight marks a source database that cannot be streamed as it is
// configured; the message says what to change.
var ErrPreflight = errors.New("source database not ready for the relay")

// Querier is what Preflight and the slot functions need of a connection.
// *pgx.Conn and *pgxpool.Pool satisfy it.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Preflight checks a source database before streaming: wal_level must be
// logical, the connecting role must be allowed to replicate, and the
// publication must exist and include the outbox. It returns warnings for
// settings that are risky but not wrong, such as an unlimited
// max_slot_wal_keep_size, with which a stalled relay can fill the disk.
func Preflight(ctx context.Context, db Querier, publication string) (warnings []string, err error) {
	var walLevel, keepSize string
	var canReplicate bool
	var hasPublication, publishesOutbox, publishesInserts bool
	err = db.QueryRow(ctx, `
		SELECT current_setting('wal_level'),
		       current_setting('max_slot_wal_keep_size'),
		       (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user),
		       EXISTS (SELECT FROM pg_publication WHERE pubname = $1),
		       EXISTS (SELECT FROM pg_publication_tables WHERE pubname = $1 AND tablename = $2),
		       coalesce((SELECT pubinsert FROM pg_publication WHERE pubname = $1), false)`,
		publication, schema.OutboxTable).
		Scan(&walLevel, &keepSize, &canReplicate, &hasPublication, &publishesOutbox, &publishesInserts)
	if err != nil {
		return nil, fmt.Errorf("reading source settings: %w", err)
	}
	var problems []error
	if walLevel != "logical" {
		problems = append(problems, fmt.Errorf("wal_level is %q; set wal_level = logical and restart Postgres", walLevel))
	}
	if !canReplicate {
		problems = append(problems, errors.New("the connecting role lacks the REPLICATION attribute; connect as alpes_relay or ALTER ROLE … REPLICATION"))
	}
	switch {
	case !hasPublication:
		problems = append(problems, fmt.Errorf("publication %q does not exist; apply the service's migrations to this database", publication))
	case !publishesOutbox:
		problems = append(problems, fmt.Errorf("publication %q does not include the %s table", publication, schema.OutboxTable))
	case !publishesInserts:
		problems = append(problems, fmt.Errorf("publication %q does not publish inserts", publication))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrPreflight, errors.Join(problems...))
	}
	if keepSize == "-1" {
		warnings = append(warnings, "max_slot_wal_keep_size is unlimited: a relay that stops confirming makes Postgres keep WAL until the disk is full; set a cap (e.g. 10GB)")
	}
	return warnings, nil
}
