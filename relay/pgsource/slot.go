package pgsource

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/alpes/alpes/outbox/schema"
)

// ErrSlotLost means the source's slot was invalidated (Postgres removed WAL
// it still needed) or has disappeared while the outbox holds rows it may not
// have streamed. Either way events may be missing: the relay stops and says
// so, and never recreates the slot on its own (see EnsureSlot).
var ErrSlotLost = errors.New("replication slot lost")

// SlotState is what pg_replication_slots says about a slot, and where the
// server's WAL was when it said so.
type SlotState struct {
	Name              string
	Exists            bool
	Plugin            string
	Database          string
	Active            bool
	RestartLSN        LSN
	ConfirmedFlushLSN LSN
	// WALStatus is reserved, extended, unreserved or lost.
	WALStatus string
	// SafeWALSize is how many more bytes of WAL can be written before the
	// slot is in danger of being invalidated; -1 when unlimited.
	SafeWALSize int64
	// CurrentWALLSN is pg_current_wal_lsn() read together with the slot.
	CurrentWALLSN LSN
}

// ReadSlot returns the state of the named slot, Exists false when there is
// no such slot, in one query together with the current WAL position.
func ReadSlot(ctx context.Context, db Querier, name string) (SlotState, error) {
	s := SlotState{Name: name}
	var wal string
	var plugin, database, restart, confirmed, walStatus *string
	var active *bool
	var safe *int64
	err := db.QueryRow(ctx, `
		SELECT w.lsn::text, s.plugin, s.database, s.active, s.restart_lsn::text,
		       s.confirmed_flush_lsn::text, s.wal_status, s.safe_wal_size
		FROM (SELECT pg_current_wal_lsn() AS lsn) w
		LEFT JOIN pg_replication_slots s ON s.slot_name = $1`, name).
		Scan(&wal, &plugin, &database, &active, &restart, &confirmed, &walStatus, &safe)
	if err != nil {
		return s, fmt.Errorf("reading slot %s: %w", name, err)
	}
	s.CurrentWALLSN, _ = pglogrepl.ParseLSN(wal)
	s.SafeWALSize = -1
	if plugin == nil { // the join found no slot of that name
		return s, nil
	}
	s.Exists, s.Plugin = true, *plugin
	if database != nil {
		s.Database = *database
	}
	if active != nil {
		s.Active = *active
	}
	if restart != nil {
		s.RestartLSN, _ = pglogrepl.ParseLSN(*restart)
	}
	if confirmed != nil {
		s.ConfirmedFlushLSN, _ = pglogrepl.ParseLSN(*confirmed)
	}
	if walStatus != nil {
		s.WALStatus = *walStatus
	}
	if safe != nil {
		s.SafeWALSize = *safe
	}
	return s, nil
}

// SlotOptions says how EnsureSlot may treat a missing slot.
type SlotOptions struct {
	// StartFresh allows creating the slot although the outbox holds rows:
	// rows written before the new slot are not streamed (replay them with
	// `alpes relay replay`). Without it, EnsureSlot refuses with ErrSlotLost.
	StartFresh bool
}

// EnsureSlot returns the slot's state, creating the permanent pgoutput slot
// when it is absent and creating it cannot skip an event: no outbox row was
// committed before the new slot's starting point, or opts.StartFresh says the
// operator accepts that. The check reads the outbox in the snapshot exported
// by the slot's creation, so no row can slip between check and slot. An
// invalidated slot (wal_status lost) is reported as ErrSlotLost, never
// recreated.
//
// db is a regular connection to the source database, repl a replication
// connection to the same database.
func EnsureSlot(ctx context.Context, db *pgx.Conn, repl *pgconn.PgConn, name string, opts SlotOptions) (state SlotState, created bool, err error) {
	state, err = ReadSlot(ctx, db, name)
	if err != nil {
		return state, false, err
	}
	if state.Exists {
		if state.WALStatus == "lost" {
			return state, false, fmt.Errorf("%w: slot %s was invalidated (wal_status lost); Postgres no longer has the WAL it needs", ErrSlotLost, name)
		}
		if state.Plugin != "pgoutput" {
			return state, false, fmt.Errorf("slot %s uses plugin %q, want pgoutput", name, state.Plugin)
		}
		return state, false, nil
	}
	res, err := pglogrepl.CreateReplicationSlot(ctx, repl, name, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{SnapshotAction: "EXPORT_SNAPSHOT"})
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42710" { // duplicate_object: another relay created it first
			state, err = ReadSlot(ctx, db, name)
			return state, false, err
		}
		return state, false, fmt.Errorf("creating slot %s: %w", name, err)
	}
	if !opts.StartFresh {
		pending, err := outboxHasRows(ctx, db, res.SnapshotName)
		if err == nil && pending {
			err = fmt.Errorf("%w: slot %s did not exist but the outbox holds rows that a new slot would not stream; "+
				"if the slot was dropped, events may be missing: replay them from the outbox, then start the slot fresh (SlotOptions.StartFresh)", ErrSlotLost, name)
		}
		if err != nil {
			if dropErr := pglogrepl.DropReplicationSlot(ctx, repl, name, pglogrepl.DropReplicationSlotOptions{}); dropErr != nil {
				err = errors.Join(err, fmt.Errorf("dropping the slot just created: %w", dropErr))
			}
			return state, false, err
		}
	}
	state, err = ReadSlot(ctx, db, name)
	return state, true, err
}

// outboxHasRows reports whether the outbox holds rows in the exported snapshot.
func outboxHasRows(ctx context.Context, db *pgx.Conn, snapshot string) (bool, error) {
	var pending bool
	err := pgx.BeginTxFunc(ctx, db, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(snapshot)); err != nil {
			return fmt.Errorf("adopting the slot's snapshot: %w", err)
		}
		return tx.QueryRow(ctx, schema.OutboxHasRows).Scan(&pending)
	})
	if err != nil {
		return false, fmt.Errorf("checking the outbox before using a new slot: %w", err)
	}
	return pending, nil
}

func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
