package reporting

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/alpes/alpes/outbox/inbox"
	ordersv1 "github.com/alpes/alpes/proto/alpes/orders/v1"
	paymentsv1 "github.com/alpes/alpes/proto/alpes/payments/v1"
	"github.com/alpes/alpes/services/eventcatalog"
)

// Subscription is the name of reporting's Key_Shared subscription, shared by
// every instance of the service.
const Subscription = "reporting"

// Topics returns the topics reporting consumes among a tenant's topics.
func Topics(t eventcatalog.Topics) []string {
	return []string{t.OrderEvents, t.PaymentEvents}
}

// NewInboxRegistry returns the handlers that fold the order and payment
// events into order_facts and timeline_entries. Each handler writes the
// order's facts and its one timeline entry in the inbox's transaction.
func NewInboxRegistry() *inbox.Registry {
	reg := inbox.NewRegistry()
	inbox.Handle(reg, onOrderPlaced)
	inbox.Handle(reg, onOrderConfirmed)
	inbox.Handle(reg, onOrderRejected)
	inbox.Handle(reg, onPaymentProcessed)
	return reg
}

func onOrderPlaced(ctx context.Context, tx inbox.Tx, msg inbox.Message, ev *ordersv1.OrderPlaced) error {
	id, err := orderID(ev.GetOrderId())
	if err != nil {
		return err
	}
	var items int32
	for _, l := range ev.GetLines() {
		items += l.GetQuantity()
	}
	total := ev.GetTotal()
	_, err = project(ctx, tx, entry(msg, id, ev.GetPlacedAt(), placedSummary(ev, items)),
		upsertPlaced, id, nullString(ev.GetCustomerId()),
		total.GetAmountMinor(), nullString(total.GetCurrency()), int32(len(ev.GetLines())), items,
		optionalTime(ev.GetRequestedAt()), optionalTime(ev.GetPlacedAt()))
	return err
}

func onOrderConfirmed(ctx context.Context, tx inbox.Tx, msg inbox.Message, ev *ordersv1.OrderConfirmed) error {
	id, err := orderID(ev.GetOrderId())
	if err != nil {
		return err
	}
	total := ev.GetTotal()
	return settle(ctx, tx, entry(msg, id, ev.GetConfirmedAt(), confirmedSummary(ev)), upsertConfirmed, id, "confirmed",
		total.GetAmountMinor(), nullString(total.GetCurrency()), nullUUID(ev.GetPaymentId()), optionalTime(ev.GetConfirmedAt()))
}

func onOrderRejected(ctx context.Context, tx inbox.Tx, msg inbox.Message, ev *ordersv1.OrderRejected) error {
	id, err := orderID(ev.GetOrderId())
	if err != nil {
		return err
	}
	return settle(ctx, tx, entry(msg, id, ev.GetRejectedAt(), rejectedSummary(ev)), upsertRejected, id, "rejected",
		rejectionReason(ev.GetReason()), nullString(ev.GetDetail()), optionalTime(ev.GetRequestedAt()), optionalTime(ev.GetRejectedAt()))
}

func onPaymentProcessed(ctx context.Context, tx inbox.Tx, msg inbox.Message, ev *paymentsv1.PaymentProcessed) error {
	id, err := orderID(ev.GetOrderId())
	if err != nil {
		return err
	}
	var status string
	switch ev.GetStatus() {
	case paymentsv1.PaymentStatus_PAYMENT_STATUS_APPROVED:
		status = "approved"
	case paymentsv1.PaymentStatus_PAYMENT_STATUS_DECLINED:
		status = "declined"
	default:
		// ADR 0002: an unknown payment status is parked, never guessed.
		return fmt.Errorf("%w: payment status %d is not one this version knows", inbox.ErrPark, ev.GetStatus())
	}
	amount := ev.GetAmount()
	_, err = project(ctx, tx, entry(msg, id, ev.GetProcessedAt(), paymentSummary(ev)),
		upsertPayment, id, nullUUID(ev.GetPaymentId()), status,
		amount.GetAmountMinor(), nullString(amount.GetCurrency()), optionalTime(ev.GetProcessedAt()))
	return err
}

// settle runs a terminal upsert (confirmed or rejected), whose update applies
// only while the order is not settled the other way, with the event's
// timeline entry. Nothing updated means the order already holds the
// contradicting terminal status: two terminal events for one order break
// the orders lifecycle, so the message is parked for an operator instead of
// either fact silently winning (the error rolls the entry back too).
func settle(ctx context.Context, tx inbox.Tx, e timelineEntry, sql string, id uuid.UUID, status string, args ...any) error {
	tag, err := project(ctx, tx, e, sql, append([]any{id}, args...)...)
	if err != nil {
		return fmt.Errorf("recording %s order %s: %w", status, id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: order %s is already settled otherwise, cannot become %s", inbox.ErrPark, id, status)
	}
	return nil
}

// timelineEntry is the arguments of insertEntry.
type timelineEntry []any

// entry is the event's timeline entry. occurred_at is the time the event
// states; an event that states none is placed at its source commit time, or
// else at the time it is applied, rather than refused.
func entry(msg inbox.Message, id uuid.UUID, stated *timestamppb.Timestamp, summary string) timelineEntry {
	occurred := msg.CommitTime
	if stated != nil {
		occurred = stated.AsTime()
	}
	if occurred.IsZero() {
		occurred = time.Now()
	}
	var committed *time.Time
	if !msg.CommitTime.IsZero() {
		committed = &msg.CommitTime
	}
	var eventID any = msg.EventID
	if u, err := uuid.Parse(msg.EventID); err == nil {
		eventID = u // the inbox has checked it already; as text, Postgres would parse it
	}
	return timelineEntry{id, eventID, msg.Type, occurred, summary, committed}
}

// project runs sql, an event's change of order_facts, and inserts the
// event's timeline entry, both in one round trip, and returns sql's command
// tag.
func project(ctx context.Context, tx inbox.Tx, e timelineEntry, sql string, args ...any) (pgconn.CommandTag, error) {
	b := &pgx.Batch{}
	b.Queue(sql, binaryUUIDs(args)...)
	b.Queue(insertEntry, binaryUUIDs(e)...)
	br := tx.SendBatch(ctx, b)
	tag, err := br.Exec()
	if err != nil {
		_ = br.Close()
		return tag, fmt.Errorf("projecting: %w", err)
	}
	if err := br.Close(); err != nil {
		return tag, fmt.Errorf("projecting: %w", err)
	}
	return tag, nil
}

// binaryUUIDs replaces the uuid.UUID and *uuid.UUID arguments in args by
// pgtype.UUID, which pgx sends in binary as it is. pgx sends a uuid.UUID
// through its driver.Valuer: formatted as text, parsed back, and encoded,
// which cost about 2 % of the whole stack's CPU under load
// (docs/profiles.md).
func binaryUUIDs(args []any) []any {
	for i, a := range args {
		switch a := a.(type) {
		case uuid.UUID:
			args[i] = pgtype.UUID{Bytes: a, Valid: true}
		case *uuid.UUID:
			if a == nil {
				args[i] = pgtype.UUID{}
			} else {
				args[i] = pgtype.UUID{Bytes: *a, Valid: true}
			}
		}
	}
	return args
}

// orderID parses an event's order id; one that is not a UUID can never be
// stored, so its message is parked.
func orderID(s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.UUID{}, fmt.Errorf("%w: order id %q is not a UUID", inbox.ErrPark, s)
	}
	return id, nil
}

// nullUUID is s as a UUID, or NULL when it is empty or not a UUID (a payment
// id is informative; a malformed one must not block the order's facts).
func nullUUID(s string) *uuid.UUID {
	id, err := uuid.Parse(s)
	if err != nil {
		return nil
	}
	return &id
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func optionalTime(ts *timestamppb.Timestamp) *time.Time {
	if ts == nil {
		return nil
	}
	t := ts.AsTime()
	return &t
}
