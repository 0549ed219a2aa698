package bench

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/alpes/alpes/internal/pgcluster"
	"github.com/alpes/alpes/migrations"
	"github.com/alpes/alpes/outbox"
	moneyv1 "github.com/alpes/alpes/proto/alpes/money/v1"
	ordersv1 "github.com/alpes/alpes/proto/alpes/orders/v1"
	paymentsv1 "github.com/alpes/alpes/proto/alpes/payments/v1"
	"github.com/alpes/alpes/services/eventcatalog"
)

// The floor's replay: the writes one successful order makes in the four
// service databases of the real pipeline, without the reads the services do
// to validate, price or deduplicate, and without the broker, the relay and
// the services themselves. Each database's part of an order is one pgx
// batch (one round trip) that Postgres runs as one implicit transaction:
// an order commits once in each of the four databases. The statements are
// the services' own (or, where a service upserts to stay order-independent,
// the plain insert or update the happy path amounts to), run through pgx's
// statement cache, so each is parsed and planned once per connection.
//
// Per order, in the order the pipeline makes them:
//
//	bff        order_requests, idempotency_keys and order_views (pending)
//	           inserted, PlaceOrder into the outbox (the accept); inbox row
//	           and view update for OrderPlaced; inbox row and view update for
//	           OrderConfirmed; one pg_notify for the view's long polls
//	orders     inbox row for PlaceOrder, the order and its lines, OrderPlaced
//	           into the outbox; inbox row for PaymentProcessed, the status
//	           update, OrderConfirmed into the outbox
//	payments   inbox row for OrderPlaced, the order's snapshot, the payment,
//	           PaymentProcessed into the outbox; inbox row for OrderConfirmed
//	           (which payments records and skips)
//	reporting  for each of OrderPlaced, PaymentProcessed and OrderConfirmed:
//	           its inbox row, its change of order_facts (an insert, then two
//	           updates) and its timeline entry
//
// Left out: apply_progress, which a consumer updates once per transaction
// of a whole batch of messages (here it would be one hot row every client
// updates), the services' reads, and rejected orders.

// The statements of the replay other than the outbox's insert, which is
// schema.InsertOutbox through outbox.Queue, as the services append.
const (
	floorInsertInbox = `INSERT INTO inbox (event_id, topic, type, source_committed_at) VALUES ($1, $2, $3, $4)`

	floorInsertRequest = `INSERT INTO order_requests (order_id, customer_id, address, lines, requested_at) VALUES ($1, $2, $3, $4, $5)`
	floorInsertKey     = `INSERT INTO idempotency_keys (key, request_hash, order_id, response_status, response_body)
VALUES ($1, $2, $3, $4, $5)`
	floorInsertView = `INSERT INTO order_views (order_id, customer_id, status, lines, requested_at, updated_at)
VALUES ($1, $2, 'pending', $3, $4, $4)`
	floorViewPlaced = `UPDATE order_views SET status = 'placed', lines = $2, total_minor = $3, currency = $4,
updated_at = clock_timestamp() WHERE order_id = $1`
	floorViewConfirmed = `UPDATE order_views SET status = 'confirmed', payment_id = $2, updated_at = clock_timestamp()
WHERE order_id = $1`
	floorNotify = `SELECT pg_notify($1, $2)`

	floorInsertOrder = `INSERT INTO orders (id, customer_id, address, status, total_minor, currency, requested_at, placed_at)
VALUES ($1, $2, $3, 'placed', $4, $5, $6, $7)`
	floorInsertLines = `INSERT INTO order_lines (order_id, line_no, sku, name, quantity, unit_price_minor)
SELECT $1::uuid, * FROM unnest($2::smallint[], $3::text[], $4::text[], $5::integer[], $6::bigint[])`
	floorConfirmOrder = `UPDATE orders SET status = 'confirmed', payment_id = $2, settled_at = $3 WHERE id = $1`

	floorInsertSnapshot = `INSERT INTO order_snapshots (order_id, customer_id, total_minor, currency, placed_at)
VALUES ($1, $2, $3, $4, $5)`
	floorInsertPayment = `INSERT INTO payments (id, order_id, amount_minor, currency, status, processed_at)
VALUES ($1, $2, $3, $4, 'approved', $5)`

	floorInsertFacts = `INSERT INTO order_facts (order_id, customer_id, status, total_minor, currency, line_count, item_count, requested_at, placed_at)
VALUES ($1, $2, 'placed', $3, $4, $5, $6, $7, $8)`
	floorFactsPaid = `UPDATE order_facts SET payment_id = $2, payment_status = 'approved', paid_minor = $3, paid_currency = $4,
paid_at = $5, updated_at = clock_timestamp() WHERE order_id = $1`
	floorFactsConfirmed = `UPDATE order_facts SET status = 'confirmed', settled_at = $2, updated_at = clock_timestamp()
WHERE order_id = $1`
	floorInsertEntry = `INSERT INTO timeline_entries (order_id, event_id, type, occurred_at, summary, source_committed_at)
VALUES ($1, $2, $3, $4, $5, $6)`
)

// bffNotifyChannel is the channel the bff notifies its long polls on
// (services/bff's notifyChannel).
const bffNotifyChannel = "bff_order_views"

// floorTables lists, per database, the tables one order writes rows into:
// what the replay's counts are checked against.
var floorTables = map[string][]string{
	"bff":       {"order_requests", "idempotency_keys", "order_views", "outbox", "inbox"},
	"orders":    {"orders", "order_lines", "outbox", "inbox"},
	"payments":  {"order_snapshots", "payments", "outbox", "inbox"},
	"reporting": {"order_facts", "timeline_entries", "inbox"},
}

// floorRowsPerOrder is how many rows one order leaves in each table of
// floorTables, by "database.table"; order_lines, which has one row per
// line, is counted apart.
var floorRowsPerOrder = map[string]int64{
	"bff.order_requests": 1, "bff.idempotency_keys": 1, "bff.order_views": 1, "bff.outbox": 1, "bff.inbox": 2,
	"orders.orders": 1, "orders.outbox": 2, "orders.inbox": 2,
	"payments.order_snapshots": 1, "payments.payments": 1, "payments.outbox": 1, "payments.inbox": 2,
	"reporting.order_facts": 1, "reporting.timeline_entries": 3, "reporting.inbox": 3,
}

// floorProduct is a catalogue entry, read once from the orders database.
type floorProduct struct {
	sku, name  string
	priceMinor int64
	currency   string
}

// floorLine is one priced line of a replayed order.
type floorLine struct {
	floorProduct
	quantity int32
}

// floorOrder is everything the replay writes about one order, in each
// database.
type floorOrder struct {
	id, paymentID                          pgtype.UUID
	idText, paymentText                    string
	key, customer, address                 string
	lines                                  []floorLine
	totalMinor                             int64
	currency                               string
	items                                  int32
	requestedAt, placedAt, paidAt, settled time.Time
	// Event ids: PlaceOrder, OrderPlaced, PaymentProcessed, OrderConfirmed.
	placeID, placedID, paidID, confirmedID string
}

// floorClient is one replay client: a connection to each service database,
// as the service's own login, and its own random source.
type floorClient struct {
	conns  map[string]*pgx.Conn
	rng    *rand.Rand
	topics eventcatalog.Topics
	cat    []floorProduct
	// lines counts the order lines this client wrote.
	lines int64
}

// newFloorClient connects to every service database of c as the service's
// role, with pgx's statement cache (each statement prepared once per
// connection, then only bound and executed).
func newFloorClient(ctx context.Context, c *pgcluster.Cluster, seed uint64, cat []floorProduct) (*floorClient, error) {
	fc := &floorClient{conns: map[string]*pgx.Conn{}, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		topics: eventcatalog.DefaultTopics(), cat: cat}
	for _, db := range migrations.Services {
		cfg, err := pgx.ParseConfig(c.DSN(migrations.ServiceRole(db), db))
		if err != nil {
			fc.close(ctx)
			return nil, fmt.Errorf("configuring the %s connection: %w", db, err)
		}
		cfg.DefaultQueryExecMode = pgx.QueryExecModeCacheStatement
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			fc.close(ctx)
			return nil, fmt.Errorf("connecting to %s: %w", db, err)
		}
		fc.conns[db] = conn
	}
	return fc, nil
}

// flushStats has each of the client's backends publish its statistics
// now (pg_stat_force_next_flush, Postgres 15 and later; nothing before).
func (fc *floorClient) flushStats(ctx context.Context) {
	for _, conn := range fc.conns {
		_, _ = conn.Exec(ctx, `SELECT pg_stat_force_next_flush()`)
	}
}

func (fc *floorClient) close(ctx context.Context) {
	for _, conn := range fc.conns {
		_ = conn.Close(context.WithoutCancel(ctx))
	}
}

// newOrder invents one order: one of 10,000 customers, one to four
// distinct products of the catalogue, one to three of each, as the load
// generator's baskets are.
func (fc *floorClient) newOrder() (*floorOrder, error) {
	r := fc.rng
	n := r.IntN(10_000)
	o := &floorOrder{
		key:      uuid.NewString(),
		customer: fmt.Sprintf("customer-%05d", n),
		address:  fmt.Sprintf("Calle del Glaciar %d, Zermatt (Ana Rojas %d)", 1+n%180, n),
	}
	ids := make([]uuid.UUID, 6)
	for i := range ids {
		id, err := uuid.NewV7()
		if err != nil {
			return nil, fmt.Errorf("minting an id: %w", err)
		}
		ids[i] = id
	}
	o.id, o.paymentID = pgtype.UUID{Bytes: ids[0], Valid: true}, pgtype.UUID{Bytes: ids[1], Valid: true}
	o.idText, o.paymentText = ids[0].String(), ids[1].String()
	o.placeID, o.placedID, o.paidID, o.confirmedID = ids[2].String(), ids[3].String(), ids[4].String(), ids[5].String()
	picked := r.Perm(len(fc.cat))[:min(1+r.IntN(4), len(fc.cat))]
	for _, i := range picked {
		l := floorLine{floorProduct: fc.cat[i], quantity: 1 + r.Int32N(3)}
		o.lines = append(o.lines, l)
		o.totalMinor += l.priceMinor * int64(l.quantity)
		o.items += l.quantity
		o.currency = l.currency
	}
	now := time.Now().UTC()
	o.requestedAt, o.placedAt, o.paidAt, o.settled = now, now, now, now
	return o, nil
}

func floorMoney(minor int64, currency string) *moneyv1.Money {
	return &moneyv1.Money{AmountMinor: minor, Currency: currency}
}

func (o *floorOrder) placeOrder() *ordersv1.PlaceOrder {
	cmd := &ordersv1.PlaceOrder{OrderId: o.idText, CustomerId: o.customer, Address: o.address, RequestedAt: timestamppb.New(o.requestedAt)}
	for _, l := range o.lines {
		cmd.Lines = append(cmd.Lines, &ordersv1.OrderLine{Sku: l.sku, Quantity: l.quantity})
	}
	return cmd
}

func (o *floorOrder) orderPlaced() *ordersv1.OrderPlaced {
	ev := &ordersv1.OrderPlaced{OrderId: o.idText, CustomerId: o.customer, Address: o.address,
		Total: floorMoney(o.totalMinor, o.currency), RequestedAt: timestamppb.New(o.requestedAt), PlacedAt: timestamppb.New(o.placedAt)}
	for _, l := range o.lines {
		ev.Lines = append(ev.Lines, &ordersv1.PricedLine{Sku: l.sku, Name: l.name, Quantity: l.quantity,
			UnitPrice: floorMoney(l.priceMinor, l.currency), LineTotal: floorMoney(l.priceMinor*int64(l.quantity), l.currency)})
	}
	return ev
}

func (o *floorOrder) paymentProcessed() *paymentsv1.PaymentProcessed {
	return &paymentsv1.PaymentProcessed{PaymentId: o.paymentText, OrderId: o.idText, Amount: floorMoney(o.totalMinor, o.currency),
		Status: paymentsv1.PaymentStatus_PAYMENT_STATUS_APPROVED, ProcessedAt: timestamppb.New(o.paidAt)}
}

func (o *floorOrder) orderConfirmed() *ordersv1.OrderConfirmed {
	return &ordersv1.OrderConfirmed{OrderId: o.idText, PaymentId: o.paymentText, Total: floorMoney(o.totalMinor, o.currency),
		ConfirmedAt: timestamppb.New(o.settled)}
}

// typeName is a message's fully qualified name, the inbox's and timeline's type.
func typeName(m proto.Message) string { return string(m.ProtoReflect().Descriptor().FullName()) }

// The JSON the bff stores: the request's lines, the view's priced lines
// and the idempotency record's answer, shaped as services/bff shapes them.
type (
	floorItemJSON struct {
		SKU      string `json:"sku"`
		Quantity int32  `json:"quantity"`
	}
	floorMoneyJSON struct {
		AmountMinor int64  `json:"amount_minor"`
		Currency    string `json:"currency"`
	}
	floorViewLineJSON struct {
		SKU       string          `json:"sku"`
		Quantity  int32           `json:"quantity"`
		Name      string          `json:"name,omitempty"`
		UnitPrice *floorMoneyJSON `json:"unit_price,omitempty"`
		LineTotal *floorMoneyJSON `json:"line_total,omitempty"`
	}
	floorRequestJSON struct {
		CustomerID string          `json:"customer_id"`
		Address    string          `json:"address"`
		Items      []floorItemJSON `json:"items"`
	}
)

// floorStep is one statement of an order's batch and the rows it must
// affect: a statement that affects another number fails the order.
type floorStep struct {
	what string
	rows int64
}

// floorBatch is one database's part of an order.
type floorBatch struct {
	db    string
	batch *pgx.Batch
	steps []floorStep
}

func (fb *floorBatch) queue(what string, rows int64, sql string, args ...any) {
	fb.batch.Queue(sql, args...)
	fb.steps = append(fb.steps, floorStep{what: what, rows: rows})
}

func (fb *floorBatch) append(what string, msg outbox.Message) error {
	if _, err := outbox.Queue(fb.batch, msg); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	fb.steps = append(fb.steps, floorStep{what: what, rows: 1})
	return nil
}

func (fb *floorBatch) inbox(eventID, topic string, m proto.Message, committed time.Time) {
	fb.queue("inbox row for "+typeName(m), 1, floorInsertInbox, eventID, topic, typeName(m), committed)
}

// batches builds the four batches of order o, in the order the pipeline
// commits them: bff, orders, payments, reporting.
func (fc *floorClient) batches(o *floorOrder) ([]*floorBatch, error) {
	t := fc.topics
	place, placed, paid, confirmed := o.placeOrder(), o.orderPlaced(), o.paymentProcessed(), o.orderConfirmed()

	req := floorRequestJSON{CustomerID: o.customer, Address: o.address}
	priced := make([]floorViewLineJSON, 0, len(o.lines))
	for _, l := range o.lines {
		req.Items = append(req.Items, floorItemJSON{SKU: l.sku, Quantity: l.quantity})
		priced = append(priced, floorViewLineJSON{SKU: l.sku, Quantity: l.quantity, Name: l.name,
			UnitPrice: &floorMoneyJSON{l.priceMinor, l.currency}, LineTotal: &floorMoneyJSON{l.priceMinor * int64(l.quantity), l.currency}})
	}
	reqJSON, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encoding the request: %w", err)
	}
	linesJSON, err := json.Marshal(req.Items)
	if err != nil {
		return nil, fmt.Errorf("encoding lines: %w", err)
	}
	pricedJSON, err := json.Marshal(priced)
	if err != nil {
		return nil, fmt.Errorf("encoding priced lines: %w", err)
	}
	answer, err := json.Marshal(map[string]string{"order_id": o.idText, "status": "pending"})
	if err != nil {
		return nil, fmt.Errorf("encoding the answer: %w", err)
	}
	hash := sha256.Sum256(reqJSON)

	bff := &floorBatch{db: "bff", batch: &pgx.Batch{}}
	bff.queue("order request", 1, floorInsertRequest, o.id, o.customer, o.address, linesJSON, o.requestedAt)
	bff.queue("idempotency record", 1, floorInsertKey, o.key, hash[:], o.id, int16(202), answer)
	bff.queue("pending view", 1, floorInsertView, o.id, o.customer, linesJSON, o.requestedAt)
	if err := bff.append("PlaceOrder", outbox.Message{Topic: t.OrderCommands, AggregateID: o.idText, Body: place,
		EventID: o.placeID, Headers: map[string]string{"request-id": o.key}}); err != nil {
		return nil, err
	}
	bff.inbox(o.placedID, t.OrderEvents, placed, o.placedAt)
	bff.queue("placed view", 1, floorViewPlaced, o.id, pricedJSON, o.totalMinor, o.currency)
	bff.inbox(o.confirmedID, t.OrderEvents, confirmed, o.settled)
	bff.queue("confirmed view", 1, floorViewConfirmed, o.id, o.paymentID)
	bff.queue("notify", 0, floorNotify, bffNotifyChannel, o.idText)

	n := len(o.lines)
	lineNos, skus, names, quantities, prices := make([]int16, n), make([]string, n), make([]string, n), make([]int32, n), make([]int64, n)
	for i, l := range o.lines {
		lineNos[i], skus[i], names[i], quantities[i], prices[i] = int16(i+1), l.sku, l.name, l.quantity, l.priceMinor
	}
	orders := &floorBatch{db: "orders", batch: &pgx.Batch{}}
	orders.inbox(o.placeID, t.OrderCommands, place, o.requestedAt)
	orders.queue("order", 1, floorInsertOrder, o.id, o.customer, o.address, o.totalMinor, o.currency, o.requestedAt, o.placedAt)
	orders.queue("order lines", int64(n), floorInsertLines, o.id, lineNos, skus, names, quantities, prices)
	if err := orders.append("OrderPlaced", outbox.Message{Topic: t.OrderEvents, AggregateID: o.idText, Body: placed, EventID: o.placedID}); err != nil {
		return nil, err
	}
	orders.inbox(o.paidID, t.PaymentEvents, paid, o.paidAt)
	orders.queue("confirmation", 1, floorConfirmOrder, o.id, o.paymentID, o.settled)
	if err := orders.append("OrderConfirmed", outbox.Message{Topic: t.OrderEvents, AggregateID: o.idText, Body: confirmed, EventID: o.confirmedID}); err != nil {
		return nil, err
	}

	payments := &floorBatch{db: "payments", batch: &pgx.Batch{}}
	payments.inbox(o.placedID, t.OrderEvents, placed, o.placedAt)
	payments.queue("order snapshot", 1, floorInsertSnapshot, o.id, o.customer, o.totalMinor, o.currency, o.placedAt)
	payments.queue("payment", 1, floorInsertPayment, o.paymentID, o.id, o.totalMinor, o.currency, o.paidAt)
	if err := payments.append("PaymentProcessed", outbox.Message{Topic: t.PaymentEvents, AggregateID: o.idText, Body: paid, EventID: o.paidID}); err != nil {
		return nil, err
	}
	payments.inbox(o.confirmedID, t.OrderEvents, confirmed, o.settled)

	total := fmt.Sprintf("%d.%02d %s", o.totalMinor/100, o.totalMinor%100, o.currency)
	entry := func(fb *floorBatch, eventID string, m proto.Message, at time.Time, summary string) {
		id := pgtype.UUID{Bytes: uuid.MustParse(eventID), Valid: true}
		fb.queue("timeline entry for "+typeName(m), 1, floorInsertEntry, o.id, id, typeName(m), at, summary, at)
	}
	reporting := &floorBatch{db: "reporting", batch: &pgx.Batch{}}
	reporting.inbox(o.placedID, t.OrderEvents, placed, o.placedAt)
	reporting.queue("facts of OrderPlaced", 1, floorInsertFacts, o.id, o.customer, o.totalMinor, o.currency, int32(n), o.items, o.requestedAt, o.placedAt)
	entry(reporting, o.placedID, placed, o.placedAt, fmt.Sprintf("Order placed by %s: %d lines, %d items, total %s.", o.customer, n, o.items, total))
	reporting.inbox(o.paidID, t.PaymentEvents, paid, o.paidAt)
	reporting.queue("facts of PaymentProcessed", 1, floorFactsPaid, o.id, o.paymentID, o.totalMinor, o.currency, o.paidAt)
	entry(reporting, o.paidID, paid, o.paidAt, fmt.Sprintf("Payment %s approved: %s charged.", o.paymentText, total))
	reporting.inbox(o.confirmedID, t.OrderEvents, confirmed, o.settled)
	reporting.queue("facts of OrderConfirmed", 1, floorFactsConfirmed, o.id, o.settled)
	entry(reporting, o.confirmedID, confirmed, o.settled, fmt.Sprintf("Order confirmed, total %s, settled by payment %s.", total, o.paymentText))

	return []*floorBatch{bff, orders, payments, reporting}, nil
}

// send runs fb on its database as one implicit transaction (one round
// trip, one commit) and checks that every statement affected the rows it
// must.
func (fc *floorClient) send(ctx context.Context, fb *floorBatch) error {
	br := fc.conns[fb.db].SendBatch(ctx, fb.batch)
	for _, s := range fb.steps {
		tag, err := br.Exec()
		if err != nil {
			_ = br.Close()
			return fmt.Errorf("%s: %s: %w", fb.db, s.what, err)
		}
		if s.rows > 0 && tag.RowsAffected() != s.rows {
			_ = br.Close()
			return fmt.Errorf("%s: %s affected %d rows, want %d", fb.db, s.what, tag.RowsAffected(), s.rows)
		}
	}
	if err := br.Close(); err != nil {
		return fmt.Errorf("%s: committing: %w", fb.db, err)
	}
	return nil
}

// replayOrder writes one order in the four databases, one commit in each,
// bff first, as the pipeline commits them.
func (fc *floorClient) replayOrder(ctx context.Context) error {
	o, err := fc.newOrder()
	if err != nil {
		return err
	}
	bs, err := fc.batches(o)
	if err != nil {
		return err
	}
	for _, fb := range bs {
		if err := fc.send(ctx, fb); err != nil {
			return fmt.Errorf("order %s: %w", o.idText, err)
		}
	}
	fc.lines += int64(len(o.lines))
	return nil
}

// floorStatements is the number of statements one order sends to each
// database (the batches' lengths), from a sample order.
func floorStatements(cat []floorProduct) (map[string]int, error) {
	fc := &floorClient{rng: rand.New(rand.NewPCG(1, 2)), topics: eventcatalog.DefaultTopics(), cat: cat}
	o, err := fc.newOrder()
	if err != nil {
		return nil, err
	}
	bs, err := fc.batches(o)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, fb := range bs {
		out[fb.db] = fb.batch.Len()
	}
	return out, nil
}

// replayOrders has the clients write n orders between them, each client
// taking the next order as soon as its last one has committed everywhere
// (closed loop: as fast as Postgres lets them). It returns how many orders
// were written, stopping at the first error.
func replayOrders(ctx context.Context, clients []*floorClient, n int) (int64, error) {
	var next, written atomic.Int64
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(clients))
	var wg sync.WaitGroup
	for i, fc := range clients {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if err := fc.replayOrder(ctx); err != nil {
					errs[i] = err
					cancel()
					return
				}
				written.Add(1)
			}
		})
	}
	wg.Wait()
	// A client cancelled by another's failure reports the cancellation:
	// the failure is what to return.
	var failed, cancelled []error
	for _, err := range errs {
		switch {
		case err == nil:
		case errors.Is(err, context.Canceled):
			cancelled = append(cancelled, err)
		default:
			failed = append(failed, err)
		}
	}
	if len(failed) > 0 {
		return written.Load(), errors.Join(failed...)
	}
	return written.Load(), errors.Join(cancelled...)
}
