package inbox

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Defaults and bounds of Sweep.
const (
	// DefaultRetention is how long inbox rows are kept: a week, seven times
	// the relay's default replay window (--outbox-retention, 24h), so that a
	// replay, a redelivery or a backlog of days still meets the ids it must
	// absorb (docs/adr/0005).
	DefaultRetention = 7 * 24 * time.Hour
	// MinRetention is the shortest retention accepted without
	// Sweep.AllowShortRetention: the relay's default replay window plus a
	// day of margin.
	MinRetention = 48 * time.Hour
	// DefaultSweepInterval is how often the inbox is swept.
	DefaultSweepInterval = time.Minute
	// DefaultSweepBatch is how many rows one sweep transaction deletes.
	DefaultSweepBatch = 1000
)

// Sweep configures the inbox sweep: how long the event ids of applied
// messages are kept. Zero fields take the defaults documented on them.
//
// A message whose id has been swept is no longer recognised as a duplicate:
// delivered again, it is applied again. Retention must therefore exceed the
// longest time after its first application that a message can be delivered
// again: a redelivery after a lost acknowledgement (seconds to minutes), a
// replay of the outbox (at most the relay's --outbox-retention after the
// source commit, which precedes the first application), or a subscription
// reset by time (never further back than the retention).
type Sweep struct {
	// Retention is how long an inbox row is kept after it was applied
	// (inbox.applied_at), counted up to the newest row's applied_at: time
	// in which the service applies nothing does not age its inbox.
	// Default DefaultRetention (7 days); it may not be shorter than
	// MinRetention (48h) unless AllowShortRetention is set.
	Retention time.Duration
	// AllowShortRetention lets Retention be shorter than MinRetention, for
	// tests and soak runs that must see the sweep work. Never in production.
	AllowShortRetention bool
	// Interval is how often the sweep runs; the first sweep runs when Run
	// starts. Negative never sweeps. Default DefaultSweepInterval (1m).
	Interval time.Duration
	// Batch is how many rows one sweep transaction deletes, oldest first: a
	// sweep deletes batch after batch until one deletes fewer. Small
	// batches hold row locks and make WAL only briefly. Default
	// DefaultSweepBatch (1000).
	Batch int
}

// withDefaults returns s with zero fields set to their defaults, and the
// problems of the result.
func (s Sweep) withDefaults() (Sweep, []error) {
	setDefault(&s.Retention, DefaultRetention)
	setDefault(&s.Interval, DefaultSweepInterval)
	setDefault(&s.Batch, DefaultSweepBatch)
	var errs []error
	switch {
	case s.Retention < 0:
		errs = append(errs, fmt.Errorf("sweep retention %s: want more than 0", s.Retention))
	case s.Retention < MinRetention && !s.AllowShortRetention:
		errs = append(errs, fmt.Errorf("sweep retention %s: want at least %s, longer than any redelivery or replay (docs/adr/0005)",
			s.Retention, MinRetention))
	}
	if s.Batch < 1 {
		errs = append(errs, fmt.Errorf("sweep batch %d: want at least 1", s.Batch))
	}
	return s, errs
}

// deleteExpired deletes up to $2 of the oldest inbox rows applied more than
// $1 before the newest one (or now, if that is earlier). The retention is
// measured on the service's own applying, not the wall clock alone: a
// service that was down longer than the retention keeps the ids it applied
// just before, so the messages it committed but never acknowledged, which
// the broker delivers first on its return, are still recognised. Both
// subqueries walk inbox_applied_at_idx; the delete goes by primary key.
const deleteExpired = `
DELETE FROM inbox WHERE event_id IN (
    SELECT event_id FROM inbox
    WHERE applied_at < LEAST(now(), (SELECT max(applied_at) FROM inbox)) - $1::interval
    ORDER BY applied_at LIMIT $2)`

// sweepLoop sweeps the inbox now and then every Interval until ctx ends.
// A failed sweep is logged and counted, and tried again at the next
// interval: the sweep never stops the consumer.
func (c *Consumer) sweepLoop(ctx context.Context) {
	s := c.cfg.Sweep
	if s.Interval < 0 {
		return
	}
	tick := time.NewTicker(s.Interval)
	defer tick.Stop()
	for {
		start := time.Now()
		n, err := c.sweep(ctx)
		took := time.Since(start)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			c.stats.sweepFailures.Add(1)
			c.log.Warn("sweeping the inbox", "deleted", n, "err", err)
		default:
			c.stats.lastSweep.Store(&sweepRecord{at: start.Add(took), took: took})
			if n > 0 {
				c.log.Info("swept the inbox", "deleted", n, "retention", s.Retention, "took", took)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// sweep deletes the expired inbox rows (see deleteExpired), one batch per
// transaction, until a batch deletes fewer than Batch rows or ctx ends. It
// returns how many rows it deleted.
func (c *Consumer) sweep(ctx context.Context) (deleted int64, err error) {
	s := c.cfg.Sweep
	for {
		var n int64
		err := pgx.BeginFunc(ctx, c.cfg.DB, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, deleteExpired, s.Retention, s.Batch)
			n = tag.RowsAffected()
			return err
		})
		if err != nil {
			return deleted, fmt.Errorf("deleting a batch of expired inbox rows: %w", err)
		}
		deleted += n
		c.stats.swept.Add(n)
		if c.afterSweepBatch != nil {
			c.afterSweepBatch(n)
		}
		if n < int64(s.Batch) {
			return deleted, nil
		}
		if ctx.Err() != nil {
			return deleted, ctx.Err()
		}
	}
}

// sweepRecord is the outcome of the last successful sweep.
type sweepRecord struct {
	at   time.Time
	took time.Duration
}
