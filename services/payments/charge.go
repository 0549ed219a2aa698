package payments

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/alpes/alpes/outbox"
	"github.com/alpes/alpes/outbox/inbox"
	moneyv1 "github.com/alpes/alpes/proto/alpes/money/v1"
	ordersv1 "github.com/alpes/alpes/proto/alpes/orders/v1"
	paymentsv1 "github.com/alpes/alpes/proto/alpes/payments/v1"
)

// charge applies an OrderPlaced within tx: snapshot, gateway decision,
// payment row and PaymentProcessed, or nothing when the order is known.
func (s *Service) charge(ctx context.Context, tx inbox.Tx, msg inbox.Message, placed *ordersv1.OrderPlaced) error {
	if err := checkChargeable(placed); err != nil {
		return fmt.Errorf("%w: OrderPlaced %s: %w", inbox.ErrPark, placed.GetOrderId(), err)
	}
	orderID, total := placed.GetOrderId(), placed.GetTotal()
	tag, err := tx.Exec(ctx, `
		INSERT INTO order_snapshots (order_id, customer_id, total_minor, currency, placed_at)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (order_id) DO NOTHING`,
		orderID, placed.GetCustomerId(), total.GetAmountMinor(), total.GetCurrency(), placedTime(placed, msg))
	if err != nil {
		return fmt.Errorf("inserting the snapshot of order %s: %w", orderID, err)
	}
	if tag.RowsAffected() == 0 {
		s.log.InfoContext(ctx, "order already charged: OrderPlaced ignored", "order_id", orderID)
		return nil
	}

	decision := s.gateway.Decide(Charge{
		OrderID:     orderID,
		CustomerID:  placed.GetCustomerId(),
		AmountMinor: total.GetAmountMinor(),
		Currency:    total.GetCurrency(),
	})
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("minting a payment id: %w", err)
	}
	status, pbStatus, reason := "approved", paymentsv1.PaymentStatus_PAYMENT_STATUS_APPROVED, (*string)(nil)
	if !decision.Approved {
		status, pbStatus, reason = "declined", paymentsv1.PaymentStatus_PAYMENT_STATUS_DECLINED, &decision.DeclineReason
	}
	// Stamped here rather than by Postgres, so that the payment and its event
	// go in one round trip; cut to the microseconds Postgres keeps.
	processedAt := time.Now().Truncate(time.Microsecond)
	b := &pgx.Batch{}
	b.Queue(`
		INSERT INTO payments (id, order_id, amount_minor, currency, status, decline_reason, processed_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		id, orderID, total.GetAmountMinor(), total.GetCurrency(), status, reason, processedAt)
	_, err = s.outbox.Queue(ctx, b, outbox.Message{
		Topic:       s.topics.PaymentEvents,
		AggregateID: orderID,
		Body: &paymentsv1.PaymentProcessed{
			PaymentId:     id.String(),
			OrderId:       orderID,
			Amount:        &moneyv1.Money{AmountMinor: total.GetAmountMinor(), Currency: total.GetCurrency()},
			Status:        pbStatus,
			DeclineReason: decision.DeclineReason,
			ProcessedAt:   timestamppb.New(processedAt),
		},
	})
	if err != nil {
		return fmt.Errorf("appending PaymentProcessed for order %s: %w", orderID, err)
	}
	br := tx.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return fmt.Errorf("inserting the payment of order %s: %w", orderID, err)
	}
	if _, err := br.Exec(); err != nil {
		return fmt.Errorf("appending PaymentProcessed for order %s: %w", orderID, err)
	}
	if err := br.Close(); err != nil {
		return fmt.Errorf("charging order %s: %w", orderID, err)
	}
	s.log.DebugContext(ctx, "payment processed", "order_id", orderID, "payment_id", id.String(),
		"status", status, "decline_reason", decision.DeclineReason)
	return nil
}

// checkChargeable says why an OrderPlaced cannot be charged as it is, or
// returns nil.
func checkChargeable(placed *ordersv1.OrderPlaced) error {
	total := placed.GetTotal()
	switch {
	case len(placed.GetOrderId()) != 36 || uuid.Validate(placed.GetOrderId()) != nil:
		return fmt.Errorf("order id %q is not a uuid", placed.GetOrderId())
	case total == nil:
		return fmt.Errorf("no total")
	case !isCurrencyCode(total.GetCurrency()):
		return fmt.Errorf("currency %q is not an ISO 4217 code", total.GetCurrency())
	case total.GetAmountMinor() < 0:
		return fmt.Errorf("negative total %d", total.GetAmountMinor())
	case strings.ContainsRune(placed.GetCustomerId(), 0):
		return fmt.Errorf("the customer id holds a NUL character")
	}
	return nil
}

// placedTime is the order's placed_at; an event without one (orders always
// sets it) falls back to its commit time, then to now.
func placedTime(placed *ordersv1.OrderPlaced, msg inbox.Message) time.Time {
	switch {
	case placed.GetPlacedAt().IsValid():
		return placed.GetPlacedAt().AsTime()
	case !msg.CommitTime.IsZero():
		return msg.CommitTime
	default:
		return time.Now()
	}
}

// isCurrencyCode reports whether s has the shape of an ISO 4217 alphabetic
// code: three upper-case ASCII letters.
func isCurrencyCode(s string) bool {
	if len(s) != 3 {
		return false
	}
	for _, r := range s {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}
