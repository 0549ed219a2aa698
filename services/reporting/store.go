package reporting

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/alpes/alpes/outbox/inbox"
)

// DB is what reporting needs of its database: the consumer's connections and
// transactions, the report's cursor, queries for the timeline, and a ping for
// readiness. A *pgxpool.Pool connected as alpes_reporting is one.
type DB interface {
	inbox.DB
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Ping(ctx context.Context) error
}

var _ DB = (*pgxpool.Pool)(nil)

// ErrOrderNotFound is returned for an order the read model has no event of.
var ErrOrderNotFound = errors.New("order not found")

// Window restricts the report to orders requested in [From, To); a zero
// bound is open. Orders whose request time is not known yet (only their
// payment has arrived) are listed, last, only when both bounds are open.
type Window struct {
	From, To time.Time
}

// selectReport lists the report's rows in (requested_at, order_id) order,
// the order of order_facts_requested_at_order_id_idx.
const selectReport = `
DECLARE report NO SCROLL CURSOR FOR
SELECT order_id::text AS order_id, customer_id, status, total_minor, currency::text AS currency,
       line_count, item_count, payment_id::text AS payment_id, payment_status, paid_minor,
       rejection_reason, requested_at, placed_at, paid_at, settled_at
FROM order_facts
WHERE ($1::timestamptz IS NULL OR requested_at >= $1)
  AND ($2::timestamptz IS NULL OR requested_at < $2)
ORDER BY requested_at, order_id`

// streamReport calls fn with each row of the report in order. It reads the
// rows through a server-side cursor, fetch rows at a time, in one read-only
// repeatable-read transaction: memory holds one batch, however many orders
// there are, and the report is one consistent snapshot. An error from fn
// stops the stream and is returned as is.
func streamReport(ctx context.Context, db DB, w Window, fetch int, fn func(Row) error) error {
	tx, err := db.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("opening the report's transaction: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, selectReport, nullTime(w.From), nullTime(w.To)); err != nil {
		return fmt.Errorf("declaring the report's cursor: %w", err)
	}
	fetchSQL := fmt.Sprintf("FETCH %d FROM report", fetch)
	for {
		rows, err := tx.Query(ctx, fetchSQL)
		if err != nil {
			return fmt.Errorf("fetching report rows: %w", err)
		}
		batch, err := pgx.CollectRows(rows, pgx.RowToStructByName[Row])
		if err != nil {
			return fmt.Errorf("reading report rows: %w", err)
		}
		for _, r := range batch {
			if err := fn(r.utc()); err != nil {
				return err
			}
		}
		if len(batch) < fetch {
			return nil
		}
	}
}

// utc returns r with its times in UTC, whatever the session's time zone.
func (r Row) utc() Row {
	for _, t := range []*time.Time{r.RequestedAt, r.PlacedAt, r.PaidAt, r.SettledAt} {
		if t != nil {
			*t = t.UTC()
		}
	}
	return r
}

// Timeline is one order's history as the timeline endpoint returns it.
type Timeline struct {
	// OrderID is the order's id.
	OrderID string `json:"order_id"`
	// Status is the order's status in the read model.
	Status string `json:"status"`
	// Entries are the order's events, oldest first.
	Entries []Entry `json:"entries"`
}

// Entry is one event of an order's timeline.
type Entry struct {
	// EventID is the event's alpes-event-id.
	EventID string `json:"event_id" db:"event_id"`
	// Type is the event's fully qualified protobuf message name.
	Type string `json:"type" db:"type"`
	// OccurredAt is the time the event states (placed_at, processed_at, …).
	OccurredAt time.Time `json:"occurred_at" db:"occurred_at"`
	// Summary is a one-sentence description for people.
	Summary string `json:"summary" db:"summary"`
	// SourceCommittedAt is when the producer committed the event, if known.
	SourceCommittedAt *time.Time `json:"source_committed_at" db:"source_committed_at"`
	// RecordedAt is when reporting applied the event.
	RecordedAt time.Time `json:"recorded_at" db:"recorded_at"`
}

// readTimeline returns the order's timeline, oldest event first; ties on the
// stated time fall back to commit order, then apply order.
func readTimeline(ctx context.Context, db DB, id uuid.UUID) (Timeline, error) {
	tl := Timeline{OrderID: id.String()}
	err := db.QueryRow(ctx, `SELECT status FROM order_facts WHERE order_id = $1`, id).Scan(&tl.Status)
	if errors.Is(err, pgx.ErrNoRows) {
		return tl, fmt.Errorf("%w: %s", ErrOrderNotFound, id)
	}
	if err != nil {
		return tl, fmt.Errorf("reading order %s: %w", id, err)
	}
	rows, err := db.Query(ctx, `
		SELECT event_id::text AS event_id, type, occurred_at, summary, source_committed_at, recorded_at
		FROM timeline_entries WHERE order_id = $1
		ORDER BY occurred_at, source_committed_at NULLS LAST, recorded_at, event_id`, id)
	if err != nil {
		return tl, fmt.Errorf("reading the timeline of %s: %w", id, err)
	}
	tl.Entries, err = pgx.CollectRows(rows, pgx.RowToStructByName[Entry])
	if err != nil {
		return tl, fmt.Errorf("reading the timeline of %s: %w", id, err)
	}
	for i := range tl.Entries {
		e := &tl.Entries[i]
		e.OccurredAt, e.RecordedAt = e.OccurredAt.UTC(), e.RecordedAt.UTC()
		if e.SourceCommittedAt != nil {
			*e.SourceCommittedAt = e.SourceCommittedAt.UTC()
		}
	}
	return tl, nil
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
