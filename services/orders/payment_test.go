package orders_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/alpes/alpes/outbox/inbox"
	moneyv1 "github.com/alpes/alpes/proto/alpes/money/v1"
	ordersv1 "github.com/alpes/alpes/proto/alpes/orders/v1"
	paymentsv1 "github.com/alpes/alpes/proto/alpes/payments/v1"
	"github.com/alpes/alpes/services/orders"
	"github.com/alpes/alpes/services/servicetest"
)

const (
	approved = paymentsv1.PaymentStatus_PAYMENT_STATUS_APPROVED
	declined = paymentsv1.PaymentStatus_PAYMENT_STATUS_DECLINED
)

// payment returns a PaymentProcessed for an order of the given total.
func payment(orderID string, amountMinor int64, status paymentsv1.PaymentStatus, reason string) *paymentsv1.PaymentProcessed {
	return &paymentsv1.PaymentProcessed{
		PaymentId:     servicetest.NewUUID(),
		OrderId:       orderID,
		Amount:        &moneyv1.Money{AmountMinor: amountMinor, Currency: "EUR"},
		Status:        status,
		DeclineReason: reason,
		ProcessedAt:   timestamppb.Now(),
	}
}

// pay publishes p on the payment events topic under a new event id.
func (e *env) pay(p *paymentsv1.PaymentProcessed) string {
	e.T.Helper()
	return e.Publish(e.Topics.PaymentEvents, p.GetOrderId(), p, servicetest.NewUUID())
}

// placed sends a PlaceOrder and waits for its OrderPlaced.
func (e *env) placed(events *servicetest.Received, lines ...any) *ordersv1.OrderPlaced {
	e.T.Helper()
	cmd := placeOrder("c", lines...)
	e.send(cmd)
	var p ordersv1.OrderPlaced
	e.Await(events, cmd.GetOrderId(), &p)
	return &p
}

func (e *env) status(orderID string) string {
	e.T.Helper()
	var s string
	if err := e.Admin.QueryRow(context.Background(), `SELECT status FROM orders WHERE id = $1`, orderID).Scan(&s); err != nil {
		e.T.Fatal(err)
	}
	return s
}

func TestPaymentSettlesTheOrder(t *testing.T) {
	e := newEnv(t)
	events := e.Watch(e.Topics.OrderEvents)
	e.startService()
	a := e.placed(events, "BOOT-GTX-42", 1)
	b := e.placed(events, "JACKET-HS", 1)

	payA := payment(a.GetOrderId(), 27900, approved, "")
	e.pay(payA)
	e.pay(payment(b.GetOrderId(), 32900, declined, "card expired"))

	var confirmed ordersv1.OrderConfirmed
	e.Await(events, a.GetOrderId(), &confirmed)
	if confirmed.GetPaymentId() != payA.GetPaymentId() || confirmed.GetTotal().GetAmountMinor() != 27900 ||
		confirmed.GetTotal().GetCurrency() != "EUR" || !confirmed.GetConfirmedAt().IsValid() {
		t.Errorf("OrderConfirmed = %v", &confirmed)
	}
	var rejected ordersv1.OrderRejected
	e.Await(events, b.GetOrderId(), &rejected)
	if rejected.GetReason() != ordersv1.RejectionReason_REJECTION_REASON_PAYMENT_DECLINED || rejected.GetDetail() != "card expired" ||
		!rejected.GetRequestedAt().AsTime().Equal(b.GetRequestedAt().AsTime()) || !rejected.GetRejectedAt().IsValid() {
		t.Errorf("OrderRejected = %v", &rejected)
	}
	if s := e.status(a.GetOrderId()); s != "confirmed" {
		t.Errorf("order a is %s, want confirmed", s)
	}
	if s := e.status(b.GetOrderId()); s != "rejected" {
		t.Errorf("order b is %s, want rejected", s)
	}
}

func TestPaymentAnomalies(t *testing.T) {
	e := newEnv(t)
	events := e.Watch(e.Topics.OrderEvents)
	e.startService()
	a := e.placed(events, "BOOT-GTX-42", 1) // settled first, then paid again
	c := e.placed(events, "PACK-45L", 1)    // stays placed through every anomaly
	rejectedAtPlacement := placeOrder("c", "NO-SUCH-SKU", 1)
	e.send(rejectedAtPlacement)
	e.Await(events, rejectedAtPlacement.GetOrderId(), &ordersv1.OrderRejected{})

	payA := payment(a.GetOrderId(), 27900, approved, "")
	e.pay(payA)
	e.Await(events, a.GetOrderId(), &ordersv1.OrderConfirmed{})

	parked := []struct {
		name string
		pay  *paymentsv1.PaymentProcessed
		want string // in the parking reason
	}{
		{"unknown status", payment(c.GetOrderId(), 14990, paymentsv1.PaymentStatus(7), ""), "does not know"},
		{"unspecified status", payment(c.GetOrderId(), 14990, paymentsv1.PaymentStatus_PAYMENT_STATUS_UNSPECIFIED, ""), "does not know"},
		{"unknown order", payment(servicetest.NewUUID(), 100, approved, ""), "never stored"},
		{"another payment for a settled order", payment(a.GetOrderId(), 27900, declined, "late"), "already confirmed"},
		{"rejected at placement", payment(rejectedAtPlacement.GetOrderId(), 100, approved, ""), "rejected at placement"},
		{"amount differs", payment(c.GetOrderId(), 1, approved, ""), "whose total is 14990 EUR"},
		{"ids not uuids", &paymentsv1.PaymentProcessed{PaymentId: "p", OrderId: "o", Status: approved}, "not uuids"},
	}
	ids := make([]string, len(parked))
	for i, p := range parked {
		ids[i] = e.pay(p.pay)
	}
	// payments re-emitting the outcome that settled a: ignored, not parked.
	again := e.pay(payA)

	for i, p := range parked {
		t.Run(p.name, func(t *testing.T) {
			e.WaitApplied(ids[i])
			if r := e.ParkedReason(ids[i]); !strings.Contains(r, p.want) {
				t.Errorf("parking reason %q, want it to mention %q", r, p.want)
			}
		})
	}
	e.WaitApplied(again)
	if r := e.ParkedReason(again); r != "" {
		t.Errorf("the repeated payment was parked: %s", r)
	}

	// Settle c properly; its event comes after anything the anomalies caused.
	e.pay(payment(c.GetOrderId(), 14990, approved, ""))
	e.Await(events, c.GetOrderId(), &ordersv1.OrderConfirmed{})
	for _, id := range []string{a.GetOrderId(), c.GetOrderId(), rejectedAtPlacement.GetOrderId()} {
		n := len(events.Of(id, "alpes.orders.v1.OrderConfirmed")) + len(events.Of(id, "alpes.orders.v1.OrderRejected"))
		if n != 1 {
			t.Errorf("order %s: %d terminal events, want 1", id, n)
		}
	}
	if s := e.status(a.GetOrderId()); s != "confirmed" {
		t.Errorf("order a is %s, want confirmed", s)
	}
}

// Postgres makes a commit decodable once its WAL is flushed, a moment before
// other sessions can see it. Under load, a payment can therefore come back
// to orders before the order it pays is visible to orders' other session:
// the payment is retried until it is, not parked as one for an order orders
// never stored. Here the order is written by a transaction still open when
// the payment arrives, committed once the first attempt has failed.
func TestPaymentForAnOrderNotYetVisibleWaitsForIt(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	logs := &servicetest.LogBuffer{}
	svc, err := orders.New(orders.Config{DB: e.App, Pulsar: e.Client, Topics: e.Topics,
		Logger: servicetest.TeeLogger(e.T, logs), Consumer: inbox.Config{RetryBackoff: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	e.Start("orders", svc.Run)

	tx, err := e.Admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	orderID := servicetest.NewUUID()
	if _, err := tx.Exec(ctx, `INSERT INTO orders (id, customer_id, address, status, total_minor, currency, requested_at, placed_at)
		VALUES ($1, 'c', 'Alpenweg 1', 'placed', 100, 'EUR', now(), now())`, orderID); err != nil {
		t.Fatal(err)
	}
	pay := e.pay(payment(orderID, 100, approved, ""))
	e.WaitFor("a first attempt that does not find the order", func() bool { return strings.Contains(logs.String(), "handler failed; retrying") })
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	e.WaitApplied(pay)
	if s := e.status(orderID); s != "confirmed" {
		t.Errorf("order %s is %s after its payment, want confirmed (parked: %q)", orderID, s, e.ParkedReason(pay))
	}
}
