package inbox

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// Progress is one topic's row of apply_progress: how far a service has
// applied the messages of one source topic.
type Progress struct {
	Topic string `db:"topic"`
	// LastEventID is the event id of the newest message applied, by source
	// commit time.
	LastEventID string `db:"last_event_id"`
	// LastCommittedAt is that message's commit time at its source database
	// (its publish time when it carried none).
	LastCommittedAt time.Time `db:"last_committed_at"`
	// LastAppliedAt is when the service last applied a message of the topic.
	LastAppliedAt time.Time `db:"last_applied_at"`
	// AppliedCount counts the messages recorded in the inbox: applied,
	// skipped, parked and dead-lettered; duplicates are not counted.
	AppliedCount int64 `db:"applied_count"`
}

// Lag is the commit → applied lag of the newest message applied: how long
// after its source transaction committed it was applied here. It says
// nothing of messages still waiting; compare LastCommittedAt with the
// source's own progress for that.
func (p Progress) Lag() time.Duration { return p.LastAppliedAt.Sub(p.LastCommittedAt) }

// Querier runs a query; a *pgxpool.Pool, *pgx.Conn and pgx.Tx are ones.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// ReadProgress returns every topic's row of apply_progress, sorted by topic.
func ReadProgress(ctx context.Context, q Querier) ([]Progress, error) {
	rows, err := q.Query(ctx, `
		SELECT topic, last_event_id::text AS last_event_id, last_committed_at, last_applied_at, applied_count
		FROM apply_progress ORDER BY topic`)
	if err != nil {
		return nil, fmt.Errorf("reading apply_progress: %w", err)
	}
	progress, err := pgx.CollectRows(rows, pgx.RowToStructByName[Progress])
	if err != nil {
		return nil, fmt.Errorf("reading apply_progress: %w", err)
	}
	return progress, nil
}

// upsertProgress moves each topic's progress forward. Instances of a service
// commit in any order, so the newest commit time wins rather than the last
// writer; topics come sorted, so two transactions lock their rows in the same
// order and cannot deadlock.
const upsertProgress = `
INSERT INTO apply_progress AS p (topic, last_event_id, last_committed_at, last_applied_at, applied_count)
SELECT t, e, c, clock_timestamp(), n FROM unnest($1::text[], $2::uuid[], $3::timestamptz[], $4::bigint[]) AS u(t, e, c, n)
ON CONFLICT (topic) DO UPDATE SET
    last_event_id     = CASE WHEN EXCLUDED.last_committed_at >= p.last_committed_at
                             THEN EXCLUDED.last_event_id ELSE p.last_event_id END,
    last_committed_at = GREATEST(p.last_committed_at, EXCLUDED.last_committed_at),
    last_applied_at   = EXCLUDED.last_applied_at,
    applied_count     = p.applied_count + EXCLUDED.applied_count`

// progressArgs are upsertProgress's arguments for the newly applied
// deliveries: per topic, the newest source commit time, its event id and
// how many were applied. They are nil when nothing was applied.
func progressArgs(applied []*delivery) []any {
	type progress struct {
		newest *delivery
		count  int64
	}
	byTopic := map[string]*progress{}
	for _, d := range applied {
		p := byTopic[d.msg.Topic]
		if p == nil {
			p = &progress{newest: d}
			byTopic[d.msg.Topic] = p
		}
		p.count++
		if !d.progressTime().Before(p.newest.progressTime()) {
			p.newest = d
		}
	}
	if len(byTopic) == 0 {
		return nil
	}
	var (
		topics []string
		ids    []pgtype.UUID
		times  []time.Time
		counts []int64
	)
	for _, t := range slices.Sorted(maps.Keys(byTopic)) {
		p := byTopic[t]
		topics = append(topics, t)
		ids = append(ids, p.newest.eventID)
		times = append(times, p.newest.progressTime())
		counts = append(counts, p.count)
	}
	return []any{topics, ids, times, counts}
}
