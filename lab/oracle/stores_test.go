package oracle

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/alpes/alpes/broker/brokertest"
	"github.com/alpes/alpes/internal/pgtest"
	"github.com/alpes/alpes/migrations"
	"github.com/alpes/alpes/outbox/eventmeta"
	"github.com/alpes/alpes/services/eventcatalog"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// realWorld is a world (see newWorld) written into real service databases
// and published to a broker, its names turned into UUIDs where the schemas
// want them.
type realWorld struct {
	*world
	dbs map[string]*pgxpool.Pool // admin pools, by service
	cfg Config                   // what Check needs to read it
}

// asUUID names id (an order, event or payment of a world) as a UUID,
// always the same one.
func asUUID(id string) string { return uuid.NewSHA1(uuid.NameSpaceURL, []byte(id)).String() }

// storeWorld writes a world of n orders into fresh databases and a broker
// tenant of the test's own; alter, when not nil, changes a message on its
// way to the broker (a relay that corrupts).
func storeWorld(t *testing.T, ctx context.Context, n int, alter func(*pulsar.ProducerMessage)) *realWorld {
	t.Helper()
	b := brokertest.Start(t)
	topics, err := eventcatalog.TopicsFor(b.Tenant(t, eventcatalog.Namespaces()...))
	if err != nil {
		t.Fatal(err)
	}
	rw := &realWorld{world: newWorldOn(topics, n), dbs: map[string]*pgxpool.Pool{}}
	rw.cfg = Config{DSNs: map[string]string{}, BrokerURL: b.ServiceURL, Topics: topics}
	for _, service := range migrations.Services {
		db := pgtest.New(t, service)
		rw.dbs[service], rw.cfg.DSNs[service] = db.Pool(t), db.DSN()
	}
	for i := range rw.ops {
		rw.ops[i].OrderID = asUUID(rw.ops[i].OrderID)
	}
	rw.cfg.Ops = rw.ops
	for _, write := range []func(*testing.T, context.Context){rw.writeBFF, rw.writeOrders, rw.writePayments, rw.writeReporting, rw.writeEvents} {
		write(t, ctx)
	}
	rw.publish(t, ctx, b, alter)
	return rw
}

// exec runs one statement on service's database, failing the test on error.
func (rw *realWorld) exec(t *testing.T, ctx context.Context, service, sql string, args ...any) {
	t.Helper()
	if _, err := rw.dbs[service].Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %s: %v", service, sql, err)
	}
}

// null is nil for a zero value (a NULL), else v.
func null[T comparable](v T) any {
	var zero T
	if v == zero {
		return nil
	}
	return v
}

// amount is a money's columns: NULLs for none.
func amount(m money) (any, any) {
	if m == (money{}) {
		return nil, nil
	}
	return m.minor, m.currency
}

// jsonLines encodes lines as the bff stores them in order_requests and
// order_views.
func jsonLines(t *testing.T, lines []pricedLine) []byte {
	t.Helper()
	out := []map[string]any{}
	for _, l := range lines {
		m := map[string]any{"sku": l.sku, "quantity": l.quantity}
		if l.name != "" {
			m["name"] = l.name
			m["unit_price"] = map[string]any{"amount_minor": l.unit.minor, "currency": l.unit.currency}
		}
		out = append(out, m)
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (rw *realWorld) writeBFF(t *testing.T, ctx context.Context) {
	s := rw.snap
	for _, id := range slices.Sorted(maps.Keys(s.requests)) {
		req := s.requests[id]
		var lines []pricedLine
		for _, l := range req.lines {
			lines = append(lines, pricedLine{line: l})
		}
		rw.exec(t, ctx, "bff", `INSERT INTO order_requests (order_id, customer_id, address, lines, requested_at) VALUES ($1, $2, $3, $4, $5)`,
			asUUID(id), req.customer, req.address, jsonLines(t, lines), t0)
		v := s.views[id]
		total, currency := amount(v.total)
		rw.exec(t, ctx, "bff", `INSERT INTO order_views (order_id, customer_id, status, lines, total_minor, currency, payment_id, requested_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)`,
			asUUID(id), v.customer, v.status, jsonLines(t, v.lines), total, currency, null(asUUIDOr(v.paymentID)), t0)
	}
	for key, rec := range s.keys {
		body, err := json.Marshal(map[string]string{"order_id": asUUID(rec.answered), "status": "pending"})
		if err != nil {
			t.Fatal(err)
		}
		rw.exec(t, ctx, "bff", `INSERT INTO idempotency_keys (key, request_hash, order_id, response_status, response_body) VALUES ($1, '\x00', $2, $3, $4)`,
			key, asUUID(rec.orderID), rec.status, body)
	}
}

func (rw *realWorld) writeOrders(t *testing.T, ctx context.Context) {
	s := rw.snap
	for sku, p := range s.catalogue {
		rw.exec(t, ctx, "orders", `INSERT INTO products (sku, name, price_minor, currency, updated_at) VALUES ($1, $2, $3, $4, $5)`,
			sku, p.name, p.price.minor, p.price.currency, t0)
	}
	for id, o := range s.orders {
		placedAt, settledAt := any(o.placedAt), o.placedAt.Add(time.Minute)
		if len(s.lines[id]) == 0 {
			placedAt, settledAt = nil, o.placedAt // rejected at placement
		}
		rw.exec(t, ctx, "orders", `INSERT INTO orders (id, customer_id, address, status, total_minor, currency, payment_id,
			rejection_reason, requested_at, placed_at, settled_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			asUUID(id), o.customer, o.address, o.status, o.total.minor, o.total.currency, null(asUUIDOr(o.paymentID)),
			null(map[string]string{"rejected": "REJECTION_REASON_PAYMENT_DECLINED"}[o.status]), t0, placedAt, settledAt)
		for i, l := range s.lines[id] {
			rw.exec(t, ctx, "orders", `INSERT INTO order_lines (order_id, line_no, sku, name, quantity, unit_price_minor) VALUES ($1, $2, $3, $4, $5, $6)`,
				asUUID(id), i+1, l.sku, l.name, l.quantity, l.unit.minor)
		}
	}
}

// asUUIDOr is asUUID, or "" for "".
func asUUIDOr(id string) string {
	if id == "" {
		return ""
	}
	return asUUID(id)
}

func (rw *realWorld) writePayments(t *testing.T, ctx context.Context) {
	for id, ps := range rw.snap.payments {
		o := rw.snap.orders[id]
		rw.exec(t, ctx, "payments", `INSERT INTO order_snapshots (order_id, customer_id, total_minor, currency, placed_at) VALUES ($1, $2, $3, $4, $5)`,
			asUUID(id), o.customer, o.total.minor, o.total.currency, o.placedAt)
		for _, p := range ps {
			rw.exec(t, ctx, "payments", `INSERT INTO payments (id, order_id, amount_minor, currency, status, decline_reason, processed_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7)`,
				asUUID(p.id), asUUID(id), p.amount.minor, p.amount.currency, p.status, null(map[string]string{"declined": "card declined"}[p.status]), o.placedAt)
		}
	}
}

func (rw *realWorld) writeReporting(t *testing.T, ctx context.Context) {
	for id, f := range rw.snap.facts {
		total, currency := amount(f.total)
		paid, paidCurrency := amount(f.paid)
		rw.exec(t, ctx, "reporting", `INSERT INTO order_facts (order_id, customer_id, status, total_minor, currency, line_count, item_count,
			payment_status, payment_id, paid_minor, paid_currency) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			asUUID(id), null(f.customer), f.status, total, currency, null(f.lineCount), null(f.itemCount),
			null(f.paymentStatus), null(asUUIDOr(f.paymentID)), paid, paidCurrency)
	}
	for id, tl := range rw.snap.timeline {
		for _, e := range tl {
			rw.exec(t, ctx, "reporting", `INSERT INTO timeline_entries (order_id, event_id, type, occurred_at, summary) VALUES ($1, $2, $3, $4, '')`,
				asUUID(id), asUUID(e.eventID), e.typ, e.occurred)
		}
	}
}

// writeEvents writes every event into its outbox and the inboxes of its
// consumers.
func (rw *realWorld) writeEvents(t *testing.T, ctx context.Context) {
	for _, e := range rw.snap.events {
		rw.exec(t, ctx, e.source, `INSERT INTO outbox (id, topic, aggregate_id, type, payload, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			asUUID(e.id), e.topic, asUUID(e.key), e.typ, e.payload, e.created)
	}
	for consumer, inbox := range rw.snap.inbox {
		for id, topic := range inbox {
			rw.exec(t, ctx, consumer, `INSERT INTO inbox (event_id, topic, type) VALUES ($1, $2, $3)`, asUUID(id), topic, rw.snap.events[id].typ)
		}
	}
}

// publish sends every event to its topic as the relay would, in outbox
// order, each changed by alter (when not nil) first.
func (rw *realWorld) publish(t *testing.T, ctx context.Context, b *brokertest.Broker, alter func(*pulsar.ProducerMessage)) {
	c := b.Client(t)
	producers := map[string]pulsar.Producer{}
	events := slices.SortedFunc(maps.Values(rw.snap.events), func(a, b event) int { return a.created.Compare(b.created) })
	for _, e := range events {
		p := producers[e.topic]
		if p == nil {
			var err error
			if p, err = c.CreateProducer(pulsar.ProducerOptions{Topic: e.topic, DisableBatching: true}); err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			producers[e.topic] = p
		}
		m := &pulsar.ProducerMessage{Key: asUUID(e.key), Payload: e.payload, Properties: map[string]string{
			eventmeta.EventID: asUUID(e.id), eventmeta.Type: e.typ, eventmeta.AggregateID: asUUID(e.key),
		}}
		if alter != nil {
			alter(m)
		}
		if _, err := p.Send(ctx, m); err != nil {
			t.Fatalf("publishing %s: %v", e.id, err)
		}
	}
}

// inspect runs the oracle's reading and checks on the stored world, as
// Check does once the system is quiet.
func (rw *realWorld) inspect(t *testing.T, ctx context.Context) Verdict {
	t.Helper()
	v := Verdict{Quiet: true}
	rw.cfg.Logger = slog.New(slog.DiscardHandler)
	if err := inspect(ctx, rw.cfg, nil, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestTheOracleReadsRealStores writes a consistent world into real
// databases and a broker, and checks that the oracle reads it whole and
// finds it clean; then alters it the way faults would, in the stores
// themselves, one order each, and checks that each alteration is found by
// its check, named by its order or event.
func TestTheOracleReadsRealStores(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Order 2's OrderPlaced reaches the broker with one byte changed.
	corrupted := asUUID("order-002-e1")
	rw := storeWorld(t, ctx, 12, func(m *pulsar.ProducerMessage) {
		if m.Properties[eventmeta.EventID] == corrupted {
			m.Payload = append([]byte(nil), m.Payload...)
			m.Payload[3] ^= 0x20
		}
	})
	v := rw.inspect(t, ctx)
	if v.Orders != 12 || v.Events[rw.topics.OrderEvents] != 23 || v.BrokerMessages[rw.topics.OrderEvents] != 23 {
		t.Errorf("the oracle did not read the whole world: %+v", v)
	}
	failed := map[string]int{}
	for _, c := range v.Checks {
		failed[c.Name] = c.Failed
	}
	if want := map[string]int{"broker": 1}; !maps.Equal(failed, withZeros(failed, want)) {
		t.Fatalf("the stored world, its one corrupted message aside, is not clean:\n%s", v)
	}

	alterations := rw.alter(t, ctx)
	v = rw.inspect(t, ctx)
	got := v.String()
	for _, a := range alterations {
		if !strings.Contains(got, a.says) {
			t.Errorf("%s: the verdict does not say %q", a.name, a.says)
		}
	}
	for _, c := range v.Checks {
		if want := wantFailed(alterations)[c.Name]; c.Failed != want {
			t.Errorf("check %s: %d violations, want %d", c.Name, c.Failed, want)
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("verdict:\n%s", got)
	}
}

// alteration is one change made to a stored world: what the verdict must
// say of it, and the violations it adds by check.
type alteration struct {
	name   string
	says   string
	counts map[string]int
}

// wantFailed sums the violations the alterations add, by check.
func wantFailed(as []alteration) map[string]int {
	out := map[string]int{}
	for _, a := range as {
		for c, n := range a.counts {
			out[c] += n
		}
	}
	return out
}

// withZeros is want with every check of got that want does not name at 0.
func withZeros(got, want map[string]int) map[string]int {
	out := maps.Clone(want)
	for c := range got {
		if _, ok := out[c]; !ok {
			out[c] = 0
		}
	}
	return out
}

// alter changes the stored world one order at a time, as faults and bugs
// would, and says what the oracle must report of each.
func (rw *realWorld) alter(t *testing.T, ctx context.Context) []alteration {
	o := func(i int) string { return rw.ops[i].OrderID }
	stray := asUUID("order-stray")
	rw.exec(t, ctx, "bff", `UPDATE order_requests SET address = 'Somewhere else 1' WHERE order_id = $1`, o(0))
	rw.exec(t, ctx, "bff", `INSERT INTO idempotency_keys (key, request_hash, order_id, response_status, response_body)
		VALUES ('key-nobody', '\x00', $1::text::uuid, 202, jsonb_build_object('order_id', $1::text))`, o(1))
	rw.exec(t, ctx, "bff", `UPDATE idempotency_keys SET response_body = jsonb_build_object('order_id', $1::text) WHERE key = 'key-003'`, o(4))
	rw.exec(t, ctx, "bff", `UPDATE order_views SET total_minor = total_minor + 100 WHERE order_id = $1`, o(5))
	rw.exec(t, ctx, "bff", `INSERT INTO order_views (order_id, customer_id, status, lines, requested_at, updated_at) VALUES ($1, 'c', 'pending', '[]', now(), now())`, stray)
	rw.exec(t, ctx, "orders", `UPDATE order_lines SET quantity = quantity + 1 WHERE order_id = $1 AND line_no = 2`, o(6))
	rw.exec(t, ctx, "payments", `UPDATE payments SET amount_minor = amount_minor - 1 WHERE order_id = $1`, o(7))
	rw.exec(t, ctx, "reporting", `UPDATE order_facts SET item_count = item_count + 1 WHERE order_id = $1`, o(8))
	rw.exec(t, ctx, "reporting", `UPDATE timeline_entries SET event_id = $2 WHERE event_id = $1`, asUUID("order-009-e2"), asUUID("elsewhere"))
	rw.ops[11].Outcome = "confirmed" // order 11 was rejected at placement
	return []alteration{
		{"a request's address", `order ` + o(0) + `: the bff's request: address "Somewhere else 1", want "Alpenweg 0"`, map[string]int{"content": 1}},
		{"a record nobody made", "idempotency record key-nobody (order " + o(1) + ") belongs to no operation", map[string]int{"ledger": 1}},
		{"a record replaying another order", "idempotency record key-003 of order " + o(3) + ` would replay status 202 naming order "` + o(4) + `"`, map[string]int{"ledger": 1}},
		{"a view's total", "order " + o(5) + ": the bff's view: total 27570 EUR, want 27470 EUR", map[string]int{"content": 1}},
		{"a view of no order", "order " + stray + " has a view in the bff but no ok or unknown operation", map[string]int{"effects": 1}},
		{"a line's quantity", "order " + o(6) + ": orders: lines [1 × AXE-1 3 × ROPE-2], want [1 × AXE-1 2 × ROPE-2]; orders: total 9490 EUR, want 9740 EUR", map[string]int{"content": 1}},
		{"a payment's amount", "order " + o(7) + ": payments: amount 18479 EUR, want 18480 EUR", map[string]int{"content": 1}},
		{"reporting's item count", "order " + o(8) + ": reporting: item count 6, want 5", map[string]int{"content": 1}},
		{"a timeline entry for another event", "order " + o(9) + ": an entry for alpes.payments.v1.PaymentProcessed event " + asUUID("elsewhere") +
			", which is not one of the order's events; no entry for alpes.payments.v1.PaymentProcessed event " + asUUID("order-009-e2"), map[string]int{"timeline": 1}},
		{"the client told the wrong outcome", "order " + o(11) + ` (key key-011): the client was told confirmed, the order is "rejected" in orders`, map[string]int{"outcome": 1}},
		{"a payload altered on the way", "alpes.orders.v1.OrderPlaced event " + asUUID("order-002-e1") + " (order " + o(2) + ")", map[string]int{"broker": 1}},
	}
}

// TestCheckSaysWhatKeepsTheSystemUnsettled leaves an order in flight in
// real stores: the system must not go quiet, and at the deadline the verdict
// is not clean and says what still moved.
func TestCheckSaysWhatKeepsTheSystemUnsettled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rw := storeWorld(t, ctx, 2, nil)
	rw.exec(t, ctx, "orders", `UPDATE orders SET status = 'placed', settled_at = NULL WHERE id = $1`, rw.ops[0].OrderID)
	cfg := rw.cfg
	cfg.QuietTimeout = 5 * time.Second
	v, err := Check(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if v.Quiet || v.OK() || !strings.Contains(v.StillMoving, "in flight orders: 1") || !strings.Contains(v.String(), "NOT quiet after") {
		t.Errorf("an order in flight; want a verdict not quiet because of it:\n%s", v)
	}
}
