package payments_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/alpes/alpes/outbox/eventmeta"
	moneyv1 "github.com/alpes/alpes/proto/alpes/money/v1"
	ordersv1 "github.com/alpes/alpes/proto/alpes/orders/v1"
	paymentsv1 "github.com/alpes/alpes/proto/alpes/payments/v1"
	"github.com/alpes/alpes/services/servicetest"
)

// orderPlaced returns an OrderPlaced for a new order of customer and total.
func orderPlaced(customer string, totalMinor int64) *ordersv1.OrderPlaced {
	return &ordersv1.OrderPlaced{
		OrderId:     servicetest.NewUUID(),
		CustomerId:  customer,
		Address:     "Via Roma 1, Courmayeur",
		Lines:       []*ordersv1.PricedLine{{Sku: "AXE-ICE-50", Name: "Ice axe", Quantity: 1}},
		Total:       &moneyv1.Money{AmountMinor: totalMinor, Currency: "EUR"},
		RequestedAt: timestamppb.New(time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)),
		PlacedAt:    timestamppb.New(time.Date(2026, 11, 26, 8, 0, 1, 0, time.UTC)),
	}
}

// send publishes an order event under a new event id, as orders' relay would.
func (e *env) send(orderID string, body proto.Message) string {
	e.T.Helper()
	return e.Publish(e.Topics.OrderEvents, orderID, body, servicetest.NewUUID())
}

func TestOrderPlacedIsCharged(t *testing.T) {
	e := newEnv(t)
	outcomes := e.Watch(e.Topics.PaymentEvents)
	e.startService()

	cases := []struct {
		name   string
		order  *ordersv1.OrderPlaced
		status paymentsv1.PaymentStatus
		reason string
	}{
		{"under the limit", orderPlaced("cust-1", 33960), paymentsv1.PaymentStatus_PAYMENT_STATUS_APPROVED, ""},
		{"at the limit", orderPlaced("cust-2", 500000), paymentsv1.PaymentStatus_PAYMENT_STATUS_APPROVED, ""},
		{"over the limit", orderPlaced("cust-3", 500001), paymentsv1.PaymentStatus_PAYMENT_STATUS_DECLINED,
			"amount 5000.01 EUR exceeds the limit of 5000.00 EUR"},
		{"blocked card", orderPlaced("blocked-cust-4", 1290), paymentsv1.PaymentStatus_PAYMENT_STATUS_DECLINED, "card blocked"},
	}
	for _, c := range cases {
		e.send(c.order.GetOrderId(), c.order)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got paymentsv1.PaymentProcessed
			msg := e.Await(outcomes, c.order.GetOrderId(), &got)
			if got.GetStatus() != c.status || got.GetDeclineReason() != c.reason || got.GetOrderId() != c.order.GetOrderId() ||
				!proto.Equal(got.GetAmount(), c.order.GetTotal()) || !got.GetProcessedAt().IsValid() {
				t.Errorf("PaymentProcessed = %v, want %s %q", &got, c.status, c.reason)
			}
			if k := msg.Properties()[eventmeta.AggregateID]; k != c.order.GetOrderId() {
				t.Errorf("aggregate id %q, want the order id", k)
			}
			var status string
			var amount int64
			var processedAt time.Time
			err := e.Admin.QueryRow(context.Background(),
				`SELECT status, amount_minor, processed_at FROM payments WHERE id = $1 AND order_id = $2`,
				got.GetPaymentId(), c.order.GetOrderId()).Scan(&status, &amount, &processedAt)
			if err != nil {
				t.Fatalf("reading payment %s: %v", got.GetPaymentId(), err)
			}
			wantStatus := strings.ToLower(strings.TrimPrefix(c.status.String(), "PAYMENT_STATUS_"))
			if status != wantStatus || amount != c.order.GetTotal().GetAmountMinor() || !processedAt.Equal(got.GetProcessedAt().AsTime()) {
				t.Errorf("payment row: %s %d %s", status, amount, processedAt)
			}
			if n := e.Count(`SELECT count(*) FROM order_snapshots WHERE order_id = $1 AND customer_id = $2 AND placed_at = $3`,
				c.order.GetOrderId(), c.order.GetCustomerId(), c.order.GetPlacedAt().AsTime()); n != 1 {
				t.Errorf("%d snapshots, want 1", n)
			}
		})
	}
}

func TestDuplicateOrderPlacedChargesOnce(t *testing.T) {
	e := newEnv(t)
	outcomes := e.Watch(e.Topics.PaymentEvents)
	e.startService()

	order := orderPlaced("cust", 14990)
	first := e.send(order.GetOrderId(), order)
	e.Await(outcomes, order.GetOrderId(), &paymentsv1.PaymentProcessed{})

	// orders re-emitting the order under a new event id, even with another
	// total, and the very same message redelivered: neither charges again.
	again := proto.Clone(order).(*ordersv1.OrderPlaced)
	again.Total.AmountMinor = 999999
	second := e.send(order.GetOrderId(), again)
	e.Publish(e.Topics.OrderEvents, order.GetOrderId(), order, first)

	sentinel := orderPlaced("cust", 100)
	e.send(sentinel.GetOrderId(), sentinel)
	e.Await(outcomes, sentinel.GetOrderId(), &paymentsv1.PaymentProcessed{})
	e.WaitApplied(second)

	if n := len(outcomes.Of(order.GetOrderId(), "alpes.payments.v1.PaymentProcessed")); n != 1 {
		t.Errorf("%d PaymentProcessed, want 1", n)
	}
	if n := e.Count(`SELECT count(*) FROM payments WHERE order_id = $1 AND amount_minor = 14990`, order.GetOrderId()); n != 1 {
		t.Errorf("%d payments of the first total, want 1 (and no other)", n)
	}
	if n := e.Count(`SELECT count(*) FROM payments`); n != 2 {
		t.Errorf("%d payments, want 2", n)
	}
}

func TestOrderOutcomesAreSkipped(t *testing.T) {
	e := newEnv(t)
	e.startService()
	orderID := servicetest.NewUUID()
	ids := []string{
		e.send(orderID, &ordersv1.OrderConfirmed{OrderId: orderID, PaymentId: servicetest.NewUUID()}),
		e.send(orderID, &ordersv1.OrderRejected{OrderId: orderID, Reason: ordersv1.RejectionReason_REJECTION_REASON_UNKNOWN_PRODUCT}),
	}
	for _, id := range ids {
		e.WaitApplied(id)
		if r := e.ParkedReason(id); r != "" {
			t.Errorf("%s parked: %s", id, r)
		}
	}
	if n := e.Count(`SELECT count(*) FROM payments`) + e.Count(`SELECT count(*) FROM order_snapshots`); n != 0 {
		t.Errorf("%d rows written for skipped events", n)
	}
}

func TestUnchargeableOrderPlacedIsParked(t *testing.T) {
	e := newEnv(t)
	e.startService()
	with := func(change func(*ordersv1.OrderPlaced)) *ordersv1.OrderPlaced {
		o := orderPlaced("cust", 1000)
		change(o)
		return o
	}
	cases := []struct {
		name  string
		order *ordersv1.OrderPlaced
		want  string
	}{
		{"order id not a uuid", with(func(o *ordersv1.OrderPlaced) { o.OrderId = "order-1" }), "not a uuid"},
		{"no total", with(func(o *ordersv1.OrderPlaced) { o.Total = nil }), "no total"},
		{"bad currency", with(func(o *ordersv1.OrderPlaced) { o.Total.Currency = "euro" }), "not an ISO 4217 code"},
		{"negative total", with(func(o *ordersv1.OrderPlaced) { o.Total.AmountMinor = -1 }), "negative total"},
		{"NUL in customer", with(func(o *ordersv1.OrderPlaced) { o.CustomerId = "a\x00b" }), "NUL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := e.send(c.order.GetOrderId(), c.order)
			e.WaitApplied(id)
			if r := e.ParkedReason(id); !strings.Contains(r, c.want) {
				t.Errorf("parking reason %q, want it to mention %q", r, c.want)
			}
		})
	}
	if n := e.Count(`SELECT count(*) FROM payments`) + e.Count(`SELECT count(*) FROM outbox`); n != 0 {
		t.Errorf("%d payments and outbox rows, want none", n)
	}
}
