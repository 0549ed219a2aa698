package chaos

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/alpes/alpes/lab/procstack"
	"github.com/alpes/alpes/migrations"
	"github.com/alpes/alpes/outbox/schema"
)

// A soak with short retentions (Config.Sweeps) has the relay delete outbox
// rows and the consumers delete inbox rows while faults strike. The oracle
// judges by those rows: every outbox event on the broker once and in every
// inbox. So the soak keeps what the sweeps delete, and gives it back to
// the oracle once the load has stopped:
//
//   - before the load, a trigger on each outbox and inbox copies every
//     deleted row into a table of its own (chaos_swept_outbox,
//     chaos_swept_inbox), as the superuser whatever role deletes;
//   - after the load, a second trigger makes the tables refuse deletes
//     without an error (the sweeps then delete nothing and carry on), and
//     the kept rows go back: inbox rows into the inbox; outbox rows into
//     chaos_outbox_restored, a table that inherits the outbox, so that the
//     oracle's reads of the outbox see them while the relay's publication,
//     which names the outbox alone, never streams them again.
//
// An inbox row that cannot go back because its event id is in the inbox
// again was swept and then applied a second time: Swept.Reapplied counts
// them, and the oracle sees their double effects.

// Swept is what the sweeps deleted during a soak, by database.
type Swept struct {
	Outbox map[string]int64 `json:"outbox_rows"`
	Inbox  map[string]int64 `json:"inbox_rows"`
	// Reapplied counts, by database, swept inbox rows whose event was
	// applied again.
	Reapplied map[string]int64 `json:"reapplied,omitempty"`
}

// keepSwept is the SQL that keeps the rows a table's deletes remove, for
// table outbox or inbox.
func keepSwept(table string) string {
	return fmt.Sprintf(`
CREATE TABLE IF NOT EXISTS chaos_swept_%[1]s (LIKE %[1]s);
CREATE OR REPLACE FUNCTION chaos_keep_swept_%[1]s() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    INSERT INTO chaos_swept_%[1]s SELECT OLD.*;
    RETURN OLD;
END $$;
CREATE OR REPLACE TRIGGER chaos_keep_swept AFTER DELETE ON %[1]s
    FOR EACH ROW EXECUTE FUNCTION chaos_keep_swept_%[1]s();`, table)
}

// refuseDeletes makes deletes from a table do nothing, without an error.
func refuseDeletes(table string) string {
	return fmt.Sprintf(`
CREATE OR REPLACE FUNCTION chaos_refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER chaos_refuse_delete BEFORE DELETE ON %[1]s
    FOR EACH ROW EXECUTE FUNCTION chaos_refuse_delete();`, table)
}

// restoreOutbox puts the kept outbox rows back where the oracle reads them
// and the relay does not, and counts them.
const restoreOutbox = `
CREATE TABLE chaos_outbox_restored () INHERITS (outbox);
CREATE TRIGGER chaos_refuse_delete BEFORE DELETE ON chaos_outbox_restored
    FOR EACH ROW EXECUTE FUNCTION chaos_refuse_delete();
INSERT INTO chaos_outbox_restored SELECT * FROM chaos_swept_outbox;`

// restoreInbox puts the kept inbox rows back; those whose event id is
// there again are not.
const restoreInbox = `INSERT INTO inbox SELECT * FROM chaos_swept_inbox ON CONFLICT (event_id) DO NOTHING`

// tablesOf are the tables the sweeps delete from in service's database.
func tablesOf(service string) []string {
	if slices.Contains(migrations.Producers, service) {
		return []string{schema.OutboxTable, schema.InboxTable}
	}
	return []string{schema.InboxTable}
}

// keepSweptRows installs the triggers that keep what the sweeps delete.
func keepSweptRows(ctx context.Context, s *procstack.Stack) error {
	for _, service := range migrations.Services {
		for _, table := range tablesOf(service) {
			if err := execAdmin(ctx, s, service, keepSwept(table)); err != nil {
				return fmt.Errorf("keeping what the sweeps delete from %s's %s: %w", service, table, err)
			}
		}
	}
	return nil
}

// restoreSwept stops the sweeps' deletes and gives the oracle back what
// they deleted, counting it.
func restoreSwept(ctx context.Context, s *procstack.Stack) (Swept, error) {
	sw := Swept{Outbox: map[string]int64{}, Inbox: map[string]int64{}, Reapplied: map[string]int64{}}
	for _, service := range migrations.Services {
		for _, table := range tablesOf(service) {
			if err := execAdmin(ctx, s, service, refuseDeletes(table)); err != nil {
				return sw, fmt.Errorf("stopping the sweep of %s's %s: %w", service, table, err)
			}
		}
		err := asAdminOn(ctx, s, service, func(conn *pgx.Conn) error {
			return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
				if slices.Contains(migrations.Producers, service) {
					tag, err := tx.Exec(ctx, restoreOutbox)
					if err != nil {
						return err
					}
					sw.Outbox[service] = tag.RowsAffected()
				}
				var kept int64
				if err := tx.QueryRow(ctx, `SELECT count(*) FROM chaos_swept_inbox`).Scan(&kept); err != nil {
					return err
				}
				tag, err := tx.Exec(ctx, restoreInbox)
				if err != nil {
					return err
				}
				sw.Inbox[service] = kept
				if n := kept - tag.RowsAffected(); n > 0 {
					sw.Reapplied[service] = n
				}
				return nil
			})
		})
		if err != nil {
			return sw, fmt.Errorf("restoring what the sweeps deleted in %s: %w", service, err)
		}
	}
	return sw, nil
}

// execAdmin runs sql as the superuser on service's database.
func execAdmin(ctx context.Context, s *procstack.Stack, service, sql string) error {
	return asAdminOn(ctx, s, service, func(conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, sql)
		return err
	})
}
