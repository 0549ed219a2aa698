package orders_test

import (
	"context"
	"math"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/alpes/alpes/outbox/eventmeta"
	ordersv1 "github.com/alpes/alpes/proto/alpes/orders/v1"
	"github.com/alpes/alpes/services/servicetest"
)

// placeOrder returns a PlaceOrder for a new order id with lines given as
// sku, quantity pairs.
func placeOrder(customer string, lines ...any) *ordersv1.PlaceOrder {
	cmd := &ordersv1.PlaceOrder{
		OrderId:     servicetest.NewUUID(),
		CustomerId:  customer,
		Address:     "Rue du Mont-Blanc 1, Chamonix",
		RequestedAt: timestamppb.New(time.Date(2026, 11, 26, 8, 0, 0, 123456789, time.UTC)),
	}
	for i := 0; i+1 < len(lines); i += 2 {
		cmd.Lines = append(cmd.Lines, &ordersv1.OrderLine{Sku: lines[i].(string), Quantity: int32(lines[i+1].(int))})
	}
	return cmd
}

// requested is cmd's requested_at as orders' events carry it: in
// microseconds, the database's resolution.
func requested(cmd *ordersv1.PlaceOrder) time.Time {
	return cmd.GetRequestedAt().AsTime().Truncate(time.Microsecond)
}

// send publishes cmd on the commands topic under a new event id.
func (e *env) send(cmd *ordersv1.PlaceOrder) string {
	e.T.Helper()
	return e.Publish(e.Topics.OrderCommands, cmd.GetOrderId(), cmd, servicetest.NewUUID())
}

func TestPlaceOrderPricesStoresAndPublishes(t *testing.T) {
	e := newEnv(t)
	events := e.Watch(e.Topics.OrderEvents)
	e.startService()

	cmd := placeOrder("cust-42", "AXE-ICE-50", 2, "HELMET-MTN", 1, "AXE-ICE-50", 1)
	e.send(cmd)

	var placed ordersv1.OrderPlaced
	msg := e.Await(events, cmd.GetOrderId(), &placed)
	if got := msg.Properties()[eventmeta.AggregateID]; got != cmd.GetOrderId() {
		t.Errorf("aggregate id %q, want %q", got, cmd.GetOrderId())
	}
	// 2 × 89.90 + 69.90 + 89.90 = 339.60 EUR.
	if placed.GetTotal().GetAmountMinor() != 33960 || placed.GetTotal().GetCurrency() != "EUR" {
		t.Errorf("total %v, want 33960 EUR", placed.GetTotal())
	}
	wantLines := []struct {
		sku, name   string
		qty         int32
		unit, total int64
	}{
		{"AXE-ICE-50", "Ice axe, 50 cm", 2, 8990, 17980},
		{"HELMET-MTN", "Mountaineering helmet", 1, 6990, 6990},
		{"AXE-ICE-50", "Ice axe, 50 cm", 1, 8990, 8990},
	}
	if len(placed.GetLines()) != len(wantLines) {
		t.Fatalf("%d lines, want %d", len(placed.GetLines()), len(wantLines))
	}
	for i, w := range wantLines {
		l := placed.GetLines()[i]
		if l.GetSku() != w.sku || l.GetName() != w.name || l.GetQuantity() != w.qty ||
			l.GetUnitPrice().GetAmountMinor() != w.unit || l.GetLineTotal().GetAmountMinor() != w.total ||
			l.GetUnitPrice().GetCurrency() != "EUR" || l.GetLineTotal().GetCurrency() != "EUR" {
			t.Errorf("line %d = %v, want %+v", i, l, w)
		}
	}
	if placed.GetCustomerId() != "cust-42" || placed.GetAddress() != cmd.GetAddress() ||
		!placed.GetRequestedAt().AsTime().Equal(requested(cmd)) || !placed.GetPlacedAt().IsValid() {
		t.Errorf("OrderPlaced = %v", &placed)
	}

	var status, currency string
	var total int64
	var placedAt time.Time
	err := e.Admin.QueryRow(context.Background(),
		`SELECT status, total_minor, currency, placed_at FROM orders WHERE id = $1`, cmd.GetOrderId()).
		Scan(&status, &total, &currency, &placedAt)
	if err != nil {
		t.Fatal(err)
	}
	if status != "placed" || total != 33960 || currency != "EUR" || !placedAt.Equal(placed.GetPlacedAt().AsTime()) {
		t.Errorf("order row: %s %d %s %s", status, total, currency, placedAt)
	}
	if n := e.Count(`SELECT count(*) FROM order_lines WHERE order_id = $1 AND line_no BETWEEN 1 AND 3`, cmd.GetOrderId()); n != 3 {
		t.Errorf("%d order lines, want 3", n)
	}
}

func TestPlaceOrderRejections(t *testing.T) {
	e := newEnv(t)
	// Products that let an order mix currencies or overflow int64.
	e.Exec(`INSERT INTO products (sku, name, price_minor, currency) VALUES
		('CHF-ROPE', 'Swiss rope', 20000, 'CHF'),
		('GOLD-AXE', 'Golden ice axe', $1, 'EUR')`, int64(math.MaxInt64/2+1))
	events := e.Watch(e.Topics.OrderEvents)
	e.startService()

	invalid, unknown := ordersv1.RejectionReason_REJECTION_REASON_INVALID_ORDER, ordersv1.RejectionReason_REJECTION_REASON_UNKNOWN_PRODUCT
	cases := []struct {
		name   string
		cmd    *ordersv1.PlaceOrder
		reason ordersv1.RejectionReason
	}{
		{"unknown sku", placeOrder("c", "AXE-ICE-50", 1, "NO-SUCH-SKU", 1), unknown},
		{"no lines", placeOrder("c"), invalid},
		{"zero quantity", placeOrder("c", "AXE-ICE-50", 0), invalid},
		{"negative quantity", placeOrder("c", "AXE-ICE-50", -3), invalid},
		{"mixed currencies", placeOrder("c", "AXE-ICE-50", 1, "CHF-ROPE", 1), invalid},
		{"line overflow", placeOrder("c", "GOLD-AXE", 2), invalid},
		{"total overflow", placeOrder("c", "GOLD-AXE", 1, "GOLD-AXE", 1), invalid},
		{"NUL in address", func() *ordersv1.PlaceOrder {
			c := placeOrder("c", "AXE-ICE-50", 1)
			c.Address = "a\x00b"
			return c
		}(), invalid},
	}
	for _, c := range cases {
		e.send(c.cmd)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var rejected ordersv1.OrderRejected
			e.Await(events, c.cmd.GetOrderId(), &rejected)
			if rejected.GetReason() != c.reason || rejected.GetDetail() == "" ||
				!rejected.GetRequestedAt().AsTime().Equal(requested(c.cmd)) || !rejected.GetRejectedAt().IsValid() {
				t.Errorf("OrderRejected = %v, want reason %s", &rejected, c.reason)
			}
			if n := len(events.Of(c.cmd.GetOrderId(), "alpes.orders.v1.OrderPlaced")); n != 0 {
				t.Errorf("%d OrderPlaced for a rejected order", n)
			}
			if n := e.Count(`SELECT count(*) FROM orders WHERE id = $1 AND status = 'rejected' AND rejection_reason = $2`,
				c.cmd.GetOrderId(), c.reason.String()); n != 1 {
				t.Errorf("%d rejected order rows, want 1", n)
			}
		})
	}
}

func TestPlaceOrderWithAnIDThatIsNotAUUIDIsParked(t *testing.T) {
	e := newEnv(t)
	e.startService()
	cmd := placeOrder("c", "AXE-ICE-50", 1)
	cmd.OrderId = "order-1"
	id := e.send(cmd)
	e.WaitApplied(id)
	if r := e.ParkedReason(id); r == "" {
		t.Error("not parked")
	}
	if n := e.Count(`SELECT count(*) FROM outbox WHERE topic = $1`, e.Topics.OrderEvents); n != 0 {
		t.Errorf("%d order events, want none", n)
	}
}

func TestDuplicatePlaceOrderIsANoOp(t *testing.T) {
	e := newEnv(t)
	events := e.Watch(e.Topics.OrderEvents)
	e.startService()

	cmd := placeOrder("c", "ROPE-DRY-60", 1)
	first := e.send(cmd)
	var placed ordersv1.OrderPlaced
	e.Await(events, cmd.GetOrderId(), &placed)

	// The same order again under a new event id, with other lines: ignored.
	again := proto.Clone(cmd).(*ordersv1.PlaceOrder)
	again.Lines = []*ordersv1.OrderLine{{Sku: "JACKET-HS", Quantity: 3}}
	second := e.send(again)
	// And the very same message again: the inbox drops it.
	e.Publish(e.Topics.OrderCommands, cmd.GetOrderId(), cmd, first)
	// A rejected order's id is taken as well.
	bad := placeOrder("c", "NO-SUCH-SKU", 1)
	e.send(bad)
	e.Await(events, bad.GetOrderId(), &ordersv1.OrderRejected{})
	e.send(bad)

	// A later order's event arrives after anything the duplicates caused.
	sentinel := placeOrder("c", "BIVY-SACK", 1)
	e.send(sentinel)
	e.Await(events, sentinel.GetOrderId(), &ordersv1.OrderPlaced{})
	e.WaitApplied(second)

	if n := len(events.Of(cmd.GetOrderId(), "alpes.orders.v1.OrderPlaced")); n != 1 {
		t.Errorf("%d OrderPlaced, want 1", n)
	}
	if n := len(events.Of(bad.GetOrderId(), "alpes.orders.v1.OrderRejected")); n != 1 {
		t.Errorf("%d OrderRejected, want 1", n)
	}
	if n := e.Count(`SELECT count(*) FROM orders WHERE id IN ($1, $2)`, cmd.GetOrderId(), bad.GetOrderId()); n != 2 {
		t.Errorf("%d orders, want 2", n)
	}
	if n := e.Count(`SELECT count(*) FROM order_lines WHERE order_id = $1 AND sku = 'ROPE-DRY-60'`, cmd.GetOrderId()); n != 1 {
		t.Errorf("lines changed: %d ROPE-DRY-60 lines, want 1", n)
	}
	if n := e.Count(`SELECT count(*) FROM parked_messages`); n != 0 {
		t.Errorf("%d parked messages, want none", n)
	}
}

// TestPlaceOrderWhoseIDIsTakenWhilePlacingIsANoOp: placing reads whether the
// order id is free, then inserts the order, its lines and OrderPlaced in one
// batch. When another transaction takes the id in between, the insert fails
// on the primary key and the retry finds the id taken: the other
// transaction's order stands, and no OrderPlaced is appended.
func TestPlaceOrderWhoseIDIsTakenWhilePlacingIsANoOp(t *testing.T) {
	e := newEnv(t)
	events := e.Watch(e.Topics.OrderEvents)
	ctx := context.Background()
	cmd := placeOrder("c", "ROPE-DRY-60", 1)

	// Another transaction takes the id and holds it uncommitted, so the
	// service reads it free and then waits on it at its insert.
	other, err := e.Admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	if _, err := other.Exec(ctx, `
		INSERT INTO orders (id, customer_id, address, status, total_minor, currency, requested_at, settled_at,
		                    rejection_reason, rejection_detail)
		VALUES ($1, 'someone-else', 'elsewhere', 'rejected', 0, 'XXX', now(), now(),
		        'REJECTION_REASON_INVALID_ORDER', 'taken by the test')`, cmd.GetOrderId()); err != nil {
		t.Fatal(err)
	}
	e.startService()
	id := e.send(cmd)
	e.WaitFor("the service's insert waiting on the test's", func() bool {
		return e.Count(`SELECT count(*) FROM pg_stat_activity
			WHERE usename = 'alpes_orders' AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO orders%'`) == 1
	})
	if err := other.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	e.WaitApplied(id)

	if n := e.Count(`SELECT count(*) FROM orders WHERE id = $1 AND customer_id = 'someone-else'`, cmd.GetOrderId()); n != 1 {
		t.Errorf("%d rows of the other transaction's order, want 1", n)
	}
	if n := e.Count(`SELECT count(*) FROM order_lines WHERE order_id = $1`, cmd.GetOrderId()); n != 0 {
		t.Errorf("%d order lines for an order placed by no one, want 0", n)
	}
	// A later order: its event comes after anything the contested one caused.
	later := placeOrder("c", "BIVY-SACK", 1)
	e.send(later)
	e.Await(events, later.GetOrderId(), &ordersv1.OrderPlaced{})
	if n := len(events.Of(cmd.GetOrderId(), "alpes.orders.v1.OrderPlaced")); n != 0 {
		t.Errorf("%d OrderPlaced for an id another transaction took, want 0", n)
	}
}
