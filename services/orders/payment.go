package orders

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/alpes/alpes/outbox/inbox"
	ordersv1 "github.com/alpes/alpes/proto/alpes/orders/v1"
	paymentsv1 "github.com/alpes/alpes/proto/alpes/payments/v1"
)

// storedOrder is what applying a payment needs of an order row.
type storedOrder struct {
	status      string
	totalMinor  int64
	currency    string
	requestedAt time.Time
	placed      bool // placed_at is set: the order got an OrderPlaced
	samePayment bool // payment_id is the payment being applied
}

// applyPayment applies a payment's outcome, a PaymentProcessed, to its
// order within tx: an approved payment confirms the order, a declined one
// rejects it, and either settles it. See the package documentation for
// what is ignored and what is parked.
func (s *Service) applyPayment(ctx context.Context, tx inbox.Tx, _ inbox.Message, pay *paymentsv1.PaymentProcessed) error {
	switch pay.GetStatus() {
	case paymentsv1.PaymentStatus_PAYMENT_STATUS_APPROVED, paymentsv1.PaymentStatus_PAYMENT_STATUS_DECLINED:
	default:
		return fmt.Errorf("%w: payment %s for order %s has status %s, which orders does not know",
			inbox.ErrPark, pay.GetPaymentId(), pay.GetOrderId(), pay.GetStatus())
	}
	if !isUUID(pay.GetOrderId()) || !isUUID(pay.GetPaymentId()) {
		return fmt.Errorf("%w: payment %q for order %q: ids are not uuids", inbox.ErrPark, pay.GetPaymentId(), pay.GetOrderId())
	}
	o, err := lockOrder(ctx, tx, pay.GetOrderId(), pay.GetPaymentId())
	if errors.Is(err, pgx.ErrNoRows) {
		// Not parked at once: Postgres makes a commit decodable a moment
		// before other sessions see it, so under load a payment can come
		// back before its order is visible here. A plain error is retried
		// with backoff (inbox.Config.MaxAttempts), then dead-lettered.
		return fmt.Errorf("payment %s for order %s, which orders never stored (or does not see yet)", pay.GetPaymentId(), pay.GetOrderId())
	}
	if err != nil {
		return err
	}
	switch {
	case o.status != "placed" && o.samePayment:
		s.log.InfoContext(ctx, "order already settled by this payment: PaymentProcessed ignored",
			"order_id", pay.GetOrderId(), "payment_id", pay.GetPaymentId())
		return nil
	case !o.placed:
		return fmt.Errorf("%w: payment %s for order %s, which was rejected at placement", inbox.ErrPark, pay.GetPaymentId(), pay.GetOrderId())
	case o.status != "placed":
		return fmt.Errorf("%w: payment %s for order %s, already %s by another payment", inbox.ErrPark, pay.GetPaymentId(), pay.GetOrderId(), o.status)
	}
	if pay.GetStatus() == paymentsv1.PaymentStatus_PAYMENT_STATUS_DECLINED {
		return s.rejectPayment(ctx, tx, pay, o)
	}
	if got := pay.GetAmount(); got.GetAmountMinor() != o.totalMinor || got.GetCurrency() != o.currency {
		return fmt.Errorf("%w: payment %s approved %d %s for order %s, whose total is %d %s", inbox.ErrPark,
			pay.GetPaymentId(), got.GetAmountMinor(), got.GetCurrency(), pay.GetOrderId(), o.totalMinor, o.currency)
	}
	return s.confirm(ctx, tx, pay, o)
}

// lockOrder reads order id and locks its row until tx ends.
func lockOrder(ctx context.Context, tx inbox.Tx, id, paymentID string) (storedOrder, error) {
	var o storedOrder
	err := tx.QueryRow(ctx, `
		SELECT status, total_minor, currency, requested_at, placed_at IS NOT NULL,
		       payment_id IS NOT DISTINCT FROM $2::uuid
		FROM orders WHERE id = $1 FOR UPDATE`, id, paymentID).
		Scan(&o.status, &o.totalMinor, &o.currency, &o.requestedAt, &o.placed, &o.samePayment)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return o, fmt.Errorf("reading order %s: %w", id, err)
	}
	return o, err
}

// confirm marks the order confirmed and appends OrderConfirmed, in one
// round trip: the order is locked already, so the update cannot miss it.
func (s *Service) confirm(ctx context.Context, tx inbox.Tx, pay *paymentsv1.PaymentProcessed, o storedOrder) error {
	confirmedAt := settleTime()
	b := &pgx.Batch{}
	b.Queue(`UPDATE orders SET status = 'confirmed', payment_id = $2, settled_at = $3 WHERE id = $1`,
		pay.GetOrderId(), pay.GetPaymentId(), confirmedAt)
	event := &ordersv1.OrderConfirmed{
		OrderId:     pay.GetOrderId(),
		PaymentId:   pay.GetPaymentId(),
		Total:       money(o.totalMinor, o.currency),
		ConfirmedAt: timestamppb.New(confirmedAt),
	}
	if err := s.settle(ctx, tx, b, pay.GetOrderId(), "confirming", event); err != nil {
		return err
	}
	s.log.DebugContext(ctx, "order confirmed", "order_id", pay.GetOrderId(), "payment_id", pay.GetPaymentId())
	return nil
}

// rejectPayment marks the order rejected for a declined payment and
// appends OrderRejected, in one round trip as confirm does.
func (s *Service) rejectPayment(ctx context.Context, tx inbox.Tx, pay *paymentsv1.PaymentProcessed, o storedOrder) error {
	const reason = ordersv1.RejectionReason_REJECTION_REASON_PAYMENT_DECLINED
	detail := pay.GetDeclineReason()
	if detail == "" {
		detail = "payment declined"
	}
	detail = stripNUL(detail)
	rejectedAt := settleTime()
	b := &pgx.Batch{}
	b.Queue(`
		UPDATE orders SET status = 'rejected', payment_id = $2, rejection_reason = $3, rejection_detail = $4,
		                  settled_at = $5
		WHERE id = $1`, pay.GetOrderId(), pay.GetPaymentId(), reason.String(), detail, rejectedAt)
	event := &ordersv1.OrderRejected{
		OrderId:     pay.GetOrderId(),
		Reason:      reason,
		Detail:      detail,
		RequestedAt: timestamppb.New(o.requestedAt),
		RejectedAt:  timestamppb.New(rejectedAt),
	}
	if err := s.settle(ctx, tx, b, pay.GetOrderId(), "rejecting", event); err != nil {
		return err
	}
	s.log.DebugContext(ctx, "order rejected", "order_id", pay.GetOrderId(), "reason", reason.String(), "detail", detail)
	return nil
}

// settle sends b, which holds the update that settles order id, with the
// event that says so appended to the outbox.
func (s *Service) settle(ctx context.Context, tx inbox.Tx, b *pgx.Batch, id, doing string, event proto.Message) error {
	if err := s.queueOrderEvent(ctx, b, id, event); err != nil {
		return err
	}
	br := tx.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return fmt.Errorf("%s order %s: %w", doing, id, err)
	}
	if _, err := br.Exec(); err != nil {
		return orderEventError(id, event, err)
	}
	if err := br.Close(); err != nil {
		return fmt.Errorf("%s order %s: %w", doing, id, err)
	}
	return nil
}

// settleTime is the time an order is settled at, stamped by the service
// rather than by Postgres so that the row and the event can be sent
// together. It is cut to Postgres's microseconds, so both say the same.
func settleTime() time.Time { return time.Now().Truncate(time.Microsecond) }
