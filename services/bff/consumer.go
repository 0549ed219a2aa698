package bff

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/alpes/alpes/outbox/inbox"
	catalogv1 "github.com/alpes/alpes/proto/alpes/catalog/v1"
	moneyv1 "github.com/alpes/alpes/proto/alpes/money/v1"
	ordersv1 "github.com/alpes/alpes/proto/alpes/orders/v1"
	"github.com/alpes/alpes/services/eventcatalog"
)

// Subscription is the bff's subscription name on every topic it consumes.
const Subscription = "bff"

// consumedTopics returns the topics the view consumer reads among a
// tenant's topics.
func consumedTopics(t eventcatalog.Topics) []string {
	return []string{t.OrderEvents, t.CatalogEvents}
}

// newRegistry returns the view consumer's handlers. Each handler changes a
// replica only forward: an order's status moves pending → placed →
// confirmed|rejected and never back (a late OrderPlaced adds its priced
// lines to a terminal view but keeps its status), and a product is replaced
// only by a snapshot with a newer updated_at.
func newRegistry() *inbox.Registry {
	reg := inbox.NewRegistry()
	inbox.Handle(reg, applyOrderPlaced)
	inbox.Handle(reg, applyOrderConfirmed)
	inbox.Handle(reg, applyOrderRejected)
	inbox.Handle(reg, applyProductUpdated)
	return reg
}

func applyOrderPlaced(ctx context.Context, tx inbox.Tx, _ inbox.Message, ev *ordersv1.OrderPlaced) error {
	if err := checkOrderID(ev.GetOrderId()); err != nil {
		return err
	}
	lines := make([]viewLine, 0, len(ev.GetLines()))
	for _, l := range ev.GetLines() {
		lines = append(lines, viewLine{SKU: l.GetSku(), Quantity: int(l.GetQuantity()), Name: l.GetName(),
			UnitPrice: toMoney(l.GetUnitPrice()), LineTotal: toMoney(l.GetLineTotal())})
	}
	linesJSON, err := json.Marshal(lines)
	if err != nil {
		return fmt.Errorf("encoding lines: %w", err)
	}
	amount, currency, err := moneyColumns(ev.GetTotal())
	if err != nil {
		return err
	}
	return applyAndNotify(ctx, tx, ev.GetOrderId(), "applying OrderPlaced", `
		INSERT INTO order_views AS v (order_id, customer_id, status, lines, total_minor, currency, requested_at, updated_at)
		VALUES ($1, $2, 'placed', $3, $4, $5, $6, clock_timestamp())
		ON CONFLICT (order_id) DO UPDATE SET
			status       = CASE WHEN v.status = 'pending' THEN 'placed' ELSE v.status END,
			lines        = EXCLUDED.lines,
			total_minor  = COALESCE(v.total_minor, EXCLUDED.total_minor),
			currency     = COALESCE(v.currency, EXCLUDED.currency),
			customer_id  = CASE WHEN v.customer_id = '' THEN EXCLUDED.customer_id ELSE v.customer_id END,
			requested_at = LEAST(v.requested_at, EXCLUDED.requested_at),
			updated_at   = clock_timestamp()`,
		ev.GetOrderId(), ev.GetCustomerId(), linesJSON, amount, currency,
		timeOr(ev.GetRequestedAt().AsTime(), ev.GetPlacedAt().AsTime()))
}

func applyOrderConfirmed(ctx context.Context, tx inbox.Tx, _ inbox.Message, ev *ordersv1.OrderConfirmed) error {
	if err := checkOrderID(ev.GetOrderId()); err != nil {
		return err
	}
	amount, currency, err := moneyColumns(ev.GetTotal())
	if err != nil {
		return err
	}
	var paymentID *string
	if p := ev.GetPaymentId(); p != "" {
		if _, err := uuid.Parse(p); err != nil {
			return fmt.Errorf("%w: payment id %q is not a UUID", inbox.ErrPark, p)
		}
		paymentID = &p
	}
	return applyAndNotify(ctx, tx, ev.GetOrderId(), "applying OrderConfirmed", `
		INSERT INTO order_views AS v (order_id, customer_id, status, lines, total_minor, currency, payment_id, requested_at, updated_at)
		VALUES ($1, '', 'confirmed', '[]', $2, $3, $4, $5, clock_timestamp())
		ON CONFLICT (order_id) DO UPDATE SET
			status      = 'confirmed',
			total_minor = COALESCE(EXCLUDED.total_minor, v.total_minor),
			currency    = COALESCE(EXCLUDED.currency, v.currency),
			payment_id  = EXCLUDED.payment_id,
			updated_at  = clock_timestamp()
		WHERE v.status IN ('pending', 'placed')`,
		ev.GetOrderId(), amount, currency, paymentID, timeOr(ev.GetConfirmedAt().AsTime(), time.Now()))
}

func applyOrderRejected(ctx context.Context, tx inbox.Tx, _ inbox.Message, ev *ordersv1.OrderRejected) error {
	if err := checkOrderID(ev.GetOrderId()); err != nil {
		return err
	}
	return applyAndNotify(ctx, tx, ev.GetOrderId(), "applying OrderRejected", `
		INSERT INTO order_views AS v (order_id, customer_id, status, lines, rejection_reason, rejection_detail, requested_at, updated_at)
		VALUES ($1, '', 'rejected', '[]', $2, $3, $4, clock_timestamp())
		ON CONFLICT (order_id) DO UPDATE SET
			status           = 'rejected',
			rejection_reason = EXCLUDED.rejection_reason,
			rejection_detail = EXCLUDED.rejection_detail,
			updated_at       = clock_timestamp()
		WHERE v.status IN ('pending', 'placed')`,
		ev.GetOrderId(), rejectionReason(ev.GetReason()), ev.GetDetail(),
		timeOr(ev.GetRequestedAt().AsTime(), ev.GetRejectedAt().AsTime()))
}

func applyProductUpdated(ctx context.Context, tx inbox.Tx, _ inbox.Message, ev *catalogv1.ProductUpdated) error {
	if ev.GetSku() == "" || ev.GetUpdatedAt() == nil || ev.GetPrice() == nil {
		return fmt.Errorf("%w: ProductUpdated without sku, price or updated_at", inbox.ErrPark)
	}
	amount, currency, err := moneyColumns(ev.GetPrice())
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `
		INSERT INTO products AS p (sku, name, price_minor, currency, updated_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (sku) DO UPDATE SET
			name = EXCLUDED.name, price_minor = EXCLUDED.price_minor,
			currency = EXCLUDED.currency, updated_at = EXCLUDED.updated_at
		WHERE p.updated_at < EXCLUDED.updated_at`,
		ev.GetSku(), ev.GetName(), amount, currency, ev.GetUpdatedAt().AsTime())
	if err != nil {
		return fmt.Errorf("applying ProductUpdated %s: %w", ev.GetSku(), err)
	}
	return nil
}

// applyAndNotify runs sql, the change of order id's view, and notifies
// waiting long polls with the view as it now is (notifySQL), which they
// receive once the transaction commits: both statements in one round trip.
// what names the change in errors.
func applyAndNotify(ctx context.Context, tx inbox.Tx, id, what, sql string, args ...any) error {
	b := &pgx.Batch{}
	b.Queue(sql, args...)
	b.Queue(notifySQL, id)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("%s to view %s: %w", what, id, err)
	}
	return nil
}

// checkOrderID parks a message whose order id cannot be a view's key.
func checkOrderID(id string) error {
	if _, err := uuid.Parse(id); err != nil {
		return fmt.Errorf("%w: order id %q is not a UUID", inbox.ErrPark, id)
	}
	return nil
}

// moneyColumns returns the amount and currency columns of m (NULLs when m
// is absent), parking amounts the view cannot hold.
func moneyColumns(m *moneyv1.Money) (*int64, *string, error) {
	if m == nil {
		return nil, nil, nil
	}
	if m.GetAmountMinor() < 0 || len(m.GetCurrency()) != 3 {
		return nil, nil, fmt.Errorf("%w: invalid money %d %q", inbox.ErrPark, m.GetAmountMinor(), m.GetCurrency())
	}
	a, c := m.GetAmountMinor(), m.GetCurrency()
	return &a, &c, nil
}

func toMoney(m *moneyv1.Money) *money {
	if m == nil {
		return nil
	}
	return &money{AmountMinor: m.GetAmountMinor(), Currency: m.GetCurrency()}
}

// rejectionReason is the view's spelling of reason: the enum name without
// its prefix, lower case (unknown_product); an unknown value is "unspecified"
// or its number, still a rejection (ADR 0002).
func rejectionReason(r ordersv1.RejectionReason) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "REJECTION_REASON_"))
}

// timeOr returns t, or fallback when t is the zero Unix time of an absent
// protobuf timestamp.
func timeOr(t, fallback time.Time) time.Time {
	if t.Unix() == 0 {
		return fallback
	}
	return t
}
