package oracle

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/alpes/alpes/migrations"
)

// errNotQuiet: the system was still moving at the deadline.
var errNotQuiet = errors.New("not quiet")

// slotState is one relay slot at the end of the wait for quiet.
type slotState struct {
	name, database string
	confirmed      string // confirmed_flush_lsn
	target         string // the position it had to reach
	caughtUp       bool
}

// awaitQuiet polls the databases until the system is quiet: every consumer's
// inbox holds as many events of its topics as the outboxes, no order is in
// flight, none of those counts moved since the last poll, and every relay
// slot has confirmed the WAL's end as it was when the counts took their
// values.
// It returns the slots as last seen; errNotQuiet (wrapped, with what was
// still moving) when the deadline, cfg.QuietTimeout, passed first.
func awaitQuiet(ctx context.Context, cfg Config) ([]slotState, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.QuietTimeout)
	defer cancel()
	conns := map[string]*pgx.Conn{}
	defer func() {
		for _, c := range conns {
			c.Close(context.Background())
		}
	}()
	w := stillness{consumed: consumedTopics(cfg.Topics)}
	var (
		slots []slotState
		why   = "nothing read yet"
	)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		counts, wal, s, err := poll(ctx, cfg, conns)
		switch {
		case err != nil && ctx.Err() != nil:
			// The deadline cut the poll short: what still moved before is the news.
		case err != nil:
			why = err.Error()
		default:
			slots = s
			why = w.observe(counts, wal, slots)
			if why == "" {
				return slots, nil
			}
		}
		select {
		case <-ctx.Done():
			if cause := context.Cause(ctx); !errors.Is(cause, context.DeadlineExceeded) {
				return slots, cause
			}
			return slots, fmt.Errorf("%w after %s: %s", errNotQuiet, cfg.QuietTimeout, why)
		case <-tick.C:
		}
	}
}

// stillness is what awaitQuiet remembers from one poll to the next.
type stillness struct {
	consumed map[string][]string // the topics each consumer reads
	prev     map[string]int64    // the previous poll's counts
	target   string              // the WAL's end when the counts took their values
}

// observe takes one poll's counts, WAL end and slots, judges each slot
// against the target (setting its target and caughtUp), and says what still
// moves: "" when the system is quiet.
func (w *stillness) observe(counts map[string]int64, wal string, slots []slotState) string {
	for i := range slots {
		slots[i].judge(w.target)
	}
	why := quietness(w.consumed, counts, w.prev, slots, w.target)
	if w.target == "" || !maps.Equal(counts, w.prev) {
		// The counts took these values since the last poll: the slots must
		// reach the WAL as it is now. Later WAL, written while they stay
		// still (sweeps that delete nothing, heartbeats, checkpoints),
		// reaches a slot only with its relay's next keepalive, a poll or
		// two later: chasing it would wait on luck.
		w.target = wal
	}
	w.prev = counts
	return why
}

// judge sets whether s has confirmed target, the position it must reach.
func (s *slotState) judge(target string) {
	s.target = target
	c, errC := pglogrepl.ParseLSN(s.confirmed)
	t, errT := pglogrepl.ParseLSN(target)
	s.caughtUp = errC == nil && errT == nil && c >= t
}

// quietness says what still moves, given the topics each consumer reads;
// "" when nothing does.
func quietness(consumed map[string][]string, counts, prev map[string]int64, slots []slotState, target string) string {
	var why []string
	for _, consumer := range slices.Sorted(maps.Keys(consumed)) {
		var want int64
		for _, t := range consumed[consumer] {
			want += counts["outbox "+t]
		}
		if got := counts["inbox "+consumer]; got != want {
			why = append(why, fmt.Sprintf("%s's inbox holds %d of %d events", consumer, got, want))
		}
	}
	for _, k := range []string{"in flight orders", "in flight views", "in flight facts"} {
		if counts[k] != 0 {
			why = append(why, fmt.Sprintf("%s: %d", k, counts[k]))
		}
	}
	if target == "" {
		why = append(why, "no WAL position to reach yet")
	}
	if len(slots) < len(migrations.Producers) {
		why = append(why, fmt.Sprintf("%d relay slots, want %d", len(slots), len(migrations.Producers)))
	}
	for _, s := range slots {
		if !s.caughtUp {
			why = append(why, fmt.Sprintf("slot %s at %s, behind %s", s.name, s.confirmed, s.target))
		}
	}
	if len(why) == 0 && !maps.Equal(counts, prev) {
		why = append(why, "counts still moving")
	}
	return strings.Join(why, "; ")
}

// poll reads the counts awaitQuiet watches, the WAL's end and the relay
// slots' confirmed positions.
func poll(ctx context.Context, cfg Config, conns map[string]*pgx.Conn) (map[string]int64, string, []slotState, error) {
	counts := map[string]int64{}
	var wal string
	var slots []slotState
	for _, service := range services {
		c := conns[service]
		if c == nil || c.IsClosed() {
			var err error
			if c, err = pgx.Connect(ctx, cfg.DSNs[service]); err != nil {
				return nil, "", nil, fmt.Errorf("connecting to %s: %w", service, err)
			}
			conns[service] = c
		}
		err := pollService(ctx, c, service, counts)
		if err == nil && service == "bff" {
			// pg_replication_slots and the WAL are the cluster's, whichever database asks.
			wal, slots, err = pollSlots(ctx, c)
		}
		if err != nil {
			c.Close(context.Background())
			delete(conns, service)
			return nil, "", nil, fmt.Errorf("reading %s: %w", service, err)
		}
	}
	return counts, wal, slots, nil
}

func pollService(ctx context.Context, c *pgx.Conn, service string, counts map[string]int64) error {
	add := func(sql, name string) error {
		var n int64
		if err := c.QueryRow(ctx, sql).Scan(&n); err != nil {
			return fmt.Errorf("%s: %w", sql, err)
		}
		counts[name] += n
		return nil
	}
	if isProducer(service) {
		rows, err := c.Query(ctx, `SELECT topic, count(*) FROM outbox GROUP BY topic`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var topic string
			var n int64
			if err := rows.Scan(&topic, &n); err != nil {
				rows.Close()
				return err
			}
			counts["outbox "+topic] += n
		}
		if err := rows.Err(); err != nil {
			return err
		}
	}
	if err := add(`SELECT count(*) FROM inbox`, "inbox "+service); err != nil {
		return err
	}
	switch service {
	case "bff":
		return add(`SELECT count(*) FROM order_views WHERE status NOT IN ('confirmed', 'rejected')`, "in flight views")
	case "orders":
		return add(`SELECT count(*) FROM orders WHERE status NOT IN ('confirmed', 'rejected')`, "in flight orders")
	case "reporting":
		return add(`SELECT count(*) FROM order_facts WHERE status NOT IN ('confirmed', 'rejected')`, "in flight facts")
	}
	return nil
}

func pollSlots(ctx context.Context, c *pgx.Conn) (string, []slotState, error) {
	var wal string
	if err := c.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&wal); err != nil {
		return "", nil, err
	}
	rows, err := c.Query(ctx, `
		SELECT slot_name, coalesce(database, ''), coalesce(confirmed_flush_lsn::text, '')
		FROM pg_replication_slots WHERE slot_type = 'logical' ORDER BY slot_name`)
	if err != nil {
		return "", nil, err
	}
	slots, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (slotState, error) {
		var s slotState
		err := r.Scan(&s.name, &s.database, &s.confirmed)
		return s, err
	})
	return wal, slots, err
}
