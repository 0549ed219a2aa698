package oracle

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// event is one outbox row, as the oracle needs it.
type event struct {
	id, topic, key, typ string
	source              string // the database whose outbox holds it
	created             time.Time
}

// timelineEntry is one row of reporting's timeline_entries.
type timelineEntry struct {
	eventID, typ string
	occurred     time.Time
}

// snapshot is what the oracle reads of every database after settling.
type snapshot struct {
	// bff
	keys     map[string]string // idempotency key → order id
	requests map[string]bool   // order_requests
	views    map[string]string // order_views: order id → status
	// orders
	orders map[string]string // order id → status
	// payments: order id → how many payment rows
	payments map[string]int
	// reporting
	facts    map[string]string // order_facts: order id → status
	timeline map[string][]timelineEntry
	// every outbox, by event id; and the events of each order, in outbox order
	events       map[string]event
	eventsByKey  map[string][]event
	duplicateIDs []string // an event id in two outboxes
	// inbox[service][event id] = topic; parked[service] = count
	inbox  map[string]map[string]string
	parked map[string]int
}

// read loads the snapshot, one database at a time.
func read(ctx context.Context, dsns map[string]string) (*snapshot, error) {
	s := &snapshot{
		keys: map[string]string{}, requests: map[string]bool{}, views: map[string]string{},
		orders: map[string]string{}, payments: map[string]int{}, facts: map[string]string{},
		timeline: map[string][]timelineEntry{}, events: map[string]event{}, eventsByKey: map[string][]event{},
		inbox: map[string]map[string]string{}, parked: map[string]int{},
	}
	for _, service := range services {
		conn, err := pgx.Connect(ctx, dsns[service])
		if err != nil {
			return nil, fmt.Errorf("connecting to %s: %w", service, err)
		}
		err = s.readService(ctx, conn, service)
		conn.Close(context.Background())
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", service, err)
		}
	}
	return s, nil
}

func (s *snapshot) readService(ctx context.Context, conn *pgx.Conn, service string) error {
	inbox := map[string]string{}
	s.inbox[service] = inbox
	queries := []struct {
		sql  string
		scan func(pgx.Rows) error
	}{
		{`SELECT event_id::text, topic FROM inbox`, func(r pgx.Rows) error {
			var id, topic string
			err := r.Scan(&id, &topic)
			inbox[id] = topic
			return err
		}},
		{`SELECT count(*) FROM parked_messages`, func(r pgx.Rows) error {
			var n int
			err := r.Scan(&n)
			s.parked[service] = n
			return err
		}},
	}
	if isProducer(service) {
		queries = append(queries, struct {
			sql  string
			scan func(pgx.Rows) error
		}{`SELECT id::text, topic, aggregate_id, type, created_at FROM outbox ORDER BY created_at, id`, func(r pgx.Rows) error {
			e := event{source: service}
			if err := r.Scan(&e.id, &e.topic, &e.key, &e.typ, &e.created); err != nil {
				return err
			}
			if _, dup := s.events[e.id]; dup {
				s.duplicateIDs = append(s.duplicateIDs, e.id)
				return nil
			}
			s.events[e.id] = e
			s.eventsByKey[e.key] = append(s.eventsByKey[e.key], e)
			return nil
		}})
	}
	add := func(sql string, scan func(pgx.Rows) error) {
		queries = append(queries, struct {
			sql  string
			scan func(pgx.Rows) error
		}{sql, scan})
	}
	switch service {
	case "bff":
		add(`SELECT key, order_id::text FROM idempotency_keys`, func(r pgx.Rows) error {
			var k, id string
			err := r.Scan(&k, &id)
			s.keys[k] = id
			return err
		})
		add(`SELECT order_id::text FROM order_requests`, func(r pgx.Rows) error {
			var id string
			err := r.Scan(&id)
			s.requests[id] = true
			return err
		})
		add(`SELECT order_id::text, status FROM order_views`, func(r pgx.Rows) error {
			var id, st string
			err := r.Scan(&id, &st)
			s.views[id] = st
			return err
		})
	case "orders":
		add(`SELECT id::text, status FROM orders`, func(r pgx.Rows) error {
			var id, st string
			err := r.Scan(&id, &st)
			s.orders[id] = st
			return err
		})
	case "payments":
		add(`SELECT order_id::text, count(*) FROM payments GROUP BY order_id`, func(r pgx.Rows) error {
			var id string
			var n int
			err := r.Scan(&id, &n)
			s.payments[id] = n
			return err
		})
	case "reporting":
		add(`SELECT order_id::text, status FROM order_facts`, func(r pgx.Rows) error {
			var id, st string
			err := r.Scan(&id, &st)
			s.facts[id] = st
			return err
		})
		add(`SELECT order_id::text, event_id::text, type, occurred_at FROM timeline_entries ORDER BY order_id, occurred_at, recorded_at`, func(r pgx.Rows) error {
			var id string
			var e timelineEntry
			err := r.Scan(&id, &e.eventID, &e.typ, &e.occurred)
			s.timeline[id] = append(s.timeline[id], e)
			return err
		})
	}
	// One snapshot per database: a repeatable-read transaction.
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	for _, q := range queries {
		rows, err := tx.Query(ctx, q.sql)
		if err != nil {
			return fmt.Errorf("%s: %w", q.sql, err)
		}
		for rows.Next() {
			if err := q.scan(rows); err != nil {
				rows.Close()
				return fmt.Errorf("%s: %w", q.sql, err)
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("%s: %w", q.sql, err)
		}
	}
	return nil
}
