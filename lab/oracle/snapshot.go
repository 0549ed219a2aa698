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
	payload             []byte
	created             time.Time
}

// timelineEntry is one row of reporting's timeline_entries.
type timelineEntry struct {
	eventID, typ string
	occurred     time.Time
}

// money is an amount in minor units of a currency; the zero value is no
// amount at all (a NULL in the database).
type money struct {
	minor    int64
	currency string
}

func (m money) String() string {
	if m == (money{}) {
		return "none"
	}
	return fmt.Sprintf("%d %s", m.minor, m.currency)
}

// moneyOf reads a nullable amount and currency.
func moneyOf(minor *int64, currency *string) money {
	if minor == nil || currency == nil {
		return money{}
	}
	return money{minor: *minor, currency: *currency}
}

// line is one line of an order as the customer asked for it.
type line struct {
	sku      string
	quantity int
}

func (l line) String() string { return fmt.Sprintf("%d × %s", l.quantity, l.sku) }

// pricedLine is one line as orders priced it, or as a replica shows it;
// name and unit are empty on a line nobody priced.
type pricedLine struct {
	line
	name string
	unit money
}

func (l pricedLine) String() string {
	if l.name == "" && l.unit == (money{}) {
		return l.line.String()
	}
	return fmt.Sprintf("%s %q at %s", l.line, l.name, l.unit)
}

// keyRecord is one of the bff's idempotency records: the order its key
// created and the answer a retry with the key is replayed.
type keyRecord struct {
	orderID  string
	status   int    // the stored answer's HTTP status
	answered string // the order id in the stored answer's body
}

// request is one of the bff's order requests: what it accepted.
type request struct {
	customer, address string
	lines             []line
}

// order is one row of orders; its lines are in snapshot.lines.
type order struct {
	status, customer, address string
	total                     money
	paymentID                 string
	placedAt                  time.Time // or settled_at, for an order rejected before placement
}

// payment is one row of payments.
type payment struct {
	id, status string
	amount     money
}

// view is one row of the bff's order view.
type view struct {
	status, customer, paymentID string
	total                       money
	lines                       []pricedLine
}

// facts is one row of reporting's order_facts; the counts are 0 when NULL.
type facts struct {
	status, customer         string
	total, paid              money
	paymentStatus, paymentID string
	lineCount, itemCount     int
}

// product is one entry of orders' catalogue.
type product struct {
	name    string
	price   money
	updated time.Time
}

// snapshot is what the oracle reads of every database once the system is quiet.
type snapshot struct {
	// bff
	keys     map[string]keyRecord // by idempotency key
	requests map[string]request   // by order id
	views    map[string]view      // by order id
	// orders
	orders    map[string]order        // by order id
	lines     map[string][]pricedLine // order_lines by order id, in line order
	catalogue map[string]product      // by sku
	// payments, by order id
	payments map[string][]payment
	// reporting
	facts    map[string]facts // by order id
	timeline map[string][]timelineEntry
	// every outbox, by event id; and the events of each order, in outbox order
	events       map[string]event
	eventsByKey  map[string][]event
	duplicateIDs []string // an event id in two outboxes
	// inbox[service][event id] = topic; parked[service] = count
	inbox  map[string]map[string]string
	parked map[string]int
}

func newSnapshot() *snapshot {
	return &snapshot{
		keys: map[string]keyRecord{}, requests: map[string]request{}, views: map[string]view{},
		orders: map[string]order{}, lines: map[string][]pricedLine{}, catalogue: map[string]product{},
		payments: map[string][]payment{}, facts: map[string]facts{}, timeline: map[string][]timelineEntry{},
		events: map[string]event{}, eventsByKey: map[string][]event{},
		inbox: map[string]map[string]string{}, parked: map[string]int{},
	}
}

// read loads the snapshot, one database at a time.
func read(ctx context.Context, dsns map[string]string) (*snapshot, error) {
	s := newSnapshot()
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

// query is one statement of the snapshot and what to do with each row.
type query struct {
	sql  string
	scan func(pgx.Rows) error
}

// readService reads one service's database in one repeatable-read snapshot.
func (s *snapshot) readService(ctx context.Context, conn *pgx.Conn, service string) error {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	for _, q := range s.queries(service) {
		if err := runQuery(ctx, tx, q); err != nil {
			return fmt.Errorf("%s: %w", q.sql, err)
		}
	}
	return nil
}

func runQuery(ctx context.Context, tx pgx.Tx, q query) error {
	rows, err := tx.Query(ctx, q.sql)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := q.scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// queries are what the oracle reads of service's database.
func (s *snapshot) queries(service string) []query {
	qs := s.inboxQueries(service)
	if isProducer(service) {
		qs = append(qs, s.outboxQuery(service))
	}
	switch service {
	case "bff":
		qs = append(qs, s.bffQueries()...)
	case "orders":
		qs = append(qs, s.ordersQueries()...)
	case "payments":
		qs = append(qs, s.paymentsQuery())
	case "reporting":
		qs = append(qs, s.reportingQueries()...)
	}
	return qs
}

func (s *snapshot) inboxQueries(service string) []query {
	inbox := map[string]string{}
	s.inbox[service] = inbox
	return []query{
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
}

func (s *snapshot) outboxQuery(service string) query {
	return query{`SELECT id::text, topic, aggregate_id, type, payload, created_at FROM outbox ORDER BY created_at, id`, func(r pgx.Rows) error {
		e := event{source: service}
		if err := r.Scan(&e.id, &e.topic, &e.key, &e.typ, &e.payload, &e.created); err != nil {
			return err
		}
		if _, dup := s.events[e.id]; dup {
			s.duplicateIDs = append(s.duplicateIDs, e.id)
			return nil
		}
		s.events[e.id] = e
		s.eventsByKey[e.key] = append(s.eventsByKey[e.key], e)
		return nil
	}}
}

func (s *snapshot) bffQueries() []query {
	return []query{
		{`SELECT key, order_id::text, response_status, coalesce(response_body->>'order_id', '') FROM idempotency_keys`, func(r pgx.Rows) error {
			var k string
			var rec keyRecord
			err := r.Scan(&k, &rec.orderID, &rec.status, &rec.answered)
			s.keys[k] = rec
			return err
		}},
		{`SELECT order_id::text, customer_id, address, lines FROM order_requests`, func(r pgx.Rows) error {
			var id string
			var req request
			var lines []jsonLine
			if err := r.Scan(&id, &req.customer, &req.address, &lines); err != nil {
				return err
			}
			for _, l := range lines {
				req.lines = append(req.lines, l.line())
			}
			s.requests[id] = req
			return nil
		}},
		{`SELECT order_id::text, status, customer_id, lines, total_minor, currency, coalesce(payment_id::text, '') FROM order_views`, func(r pgx.Rows) error {
			var id string
			var v view
			var lines []jsonLine
			var total *int64
			var currency *string
			if err := r.Scan(&id, &v.status, &v.customer, &lines, &total, &currency, &v.paymentID); err != nil {
				return err
			}
			v.total = moneyOf(total, currency)
			for _, l := range lines {
				v.lines = append(v.lines, l.priced())
			}
			s.views[id] = v
			return nil
		}},
	}
}

// jsonLine is a line of the bff's order_requests.lines (sku and quantity)
// or order_views.lines (priced once orders placed the order), as pgx
// decodes the jsonb.
type jsonLine struct {
	SKU       string `json:"sku"`
	Quantity  int    `json:"quantity"`
	Name      string `json:"name"`
	UnitPrice *struct {
		AmountMinor int64  `json:"amount_minor"`
		Currency    string `json:"currency"`
	} `json:"unit_price"`
}

func (l jsonLine) line() line { return line{sku: l.SKU, quantity: l.Quantity} }

func (l jsonLine) priced() pricedLine {
	p := pricedLine{line: l.line(), name: l.Name}
	if l.UnitPrice != nil {
		p.unit = money{minor: l.UnitPrice.AmountMinor, currency: l.UnitPrice.Currency}
	}
	return p
}

func (s *snapshot) ordersQueries() []query {
	return []query{
		{`SELECT id::text, status, customer_id, address, total_minor, currency, coalesce(payment_id::text, ''),
		         coalesce(placed_at, settled_at, requested_at) FROM orders`, func(r pgx.Rows) error {
			var id string
			var o order
			err := r.Scan(&id, &o.status, &o.customer, &o.address, &o.total.minor, &o.total.currency, &o.paymentID, &o.placedAt)
			s.orders[id] = o
			return err
		}},
		{`SELECT l.order_id::text, l.sku, l.name, l.quantity, l.unit_price_minor, o.currency
		  FROM order_lines l JOIN orders o ON o.id = l.order_id ORDER BY l.order_id, l.line_no`, func(r pgx.Rows) error {
			var id string
			var l pricedLine
			err := r.Scan(&id, &l.sku, &l.name, &l.quantity, &l.unit.minor, &l.unit.currency)
			s.lines[id] = append(s.lines[id], l)
			return err
		}},
		{`SELECT sku, name, price_minor, currency, updated_at FROM products`, func(r pgx.Rows) error {
			var sku string
			var p product
			err := r.Scan(&sku, &p.name, &p.price.minor, &p.price.currency, &p.updated)
			s.catalogue[sku] = p
			return err
		}},
	}
}

func (s *snapshot) paymentsQuery() query {
	return query{`SELECT order_id::text, id::text, status, amount_minor, currency FROM payments`, func(r pgx.Rows) error {
		var id string
		var p payment
		err := r.Scan(&id, &p.id, &p.status, &p.amount.minor, &p.amount.currency)
		s.payments[id] = append(s.payments[id], p)
		return err
	}}
}

func (s *snapshot) reportingQueries() []query {
	return []query{
		{`SELECT order_id::text, status, coalesce(customer_id, ''), total_minor, currency, coalesce(line_count, 0), coalesce(item_count, 0),
		         coalesce(payment_status, ''), coalesce(payment_id::text, ''), paid_minor, paid_currency FROM order_facts`, func(r pgx.Rows) error {
			var id string
			var f facts
			var total, paid *int64
			var currency, paidCurrency *string
			if err := r.Scan(&id, &f.status, &f.customer, &total, &currency, &f.lineCount, &f.itemCount,
				&f.paymentStatus, &f.paymentID, &paid, &paidCurrency); err != nil {
				return err
			}
			f.total, f.paid = moneyOf(total, currency), moneyOf(paid, paidCurrency)
			s.facts[id] = f
			return nil
		}},
		{`SELECT order_id::text, event_id::text, type, occurred_at FROM timeline_entries ORDER BY order_id, occurred_at, recorded_at`, func(r pgx.Rows) error {
			var id string
			var e timelineEntry
			err := r.Scan(&id, &e.eventID, &e.typ, &e.occurred)
			s.timeline[id] = append(s.timeline[id], e)
			return err
		}},
	}
}
