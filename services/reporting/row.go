package reporting

import (
	"strconv"
	"time"
)

// Row is one order of the orders report: the order's facts as the read model
// holds them. Facts not known yet are nil (for example the customer of an
// order whose payment arrived before its OrderPlaced). A Row is a plain value:
// formats may keep it after WriteRow returns.
type Row struct {
	// OrderID is the order's id (a UUID).
	OrderID string `json:"order_id" db:"order_id"`
	// CustomerID is the customer who placed the order.
	CustomerID *string `json:"customer_id" db:"customer_id"`
	// Status is placed, confirmed or rejected.
	Status string `json:"status" db:"status"`
	// TotalMinor is the order total in minor units of Currency.
	TotalMinor *int64 `json:"total_minor" db:"total_minor"`
	// Currency is the ISO 4217 code of TotalMinor.
	Currency *string `json:"currency" db:"currency"`
	// LineCount is the number of order lines.
	LineCount *int32 `json:"line_count" db:"line_count"`
	// ItemCount is the number of units over all lines.
	ItemCount *int32 `json:"item_count" db:"item_count"`
	// PaymentID is the payment that settled or tried to settle the order.
	PaymentID *string `json:"payment_id" db:"payment_id"`
	// PaymentStatus is approved or declined.
	PaymentStatus *string `json:"payment_status" db:"payment_status"`
	// PaidMinor is what payments charged (or tried to), in minor units.
	PaidMinor *int64 `json:"paid_minor" db:"paid_minor"`
	// RejectionReason classifies a rejection, e.g. payment_declined.
	RejectionReason *string `json:"rejection_reason" db:"rejection_reason"`
	// RequestedAt is when the customer's request was accepted.
	RequestedAt *time.Time `json:"requested_at" db:"requested_at"`
	// PlacedAt is when orders stored the order.
	PlacedAt *time.Time `json:"placed_at" db:"placed_at"`
	// PaidAt is when payments recorded its outcome.
	PaidAt *time.Time `json:"paid_at" db:"paid_at"`
	// SettledAt is when orders confirmed or rejected the order.
	SettledAt *time.Time `json:"settled_at" db:"settled_at"`
}

// Columns names the report's columns, in the order of Row.Values. Tabular
// formats use it as their header.
func Columns() []string {
	return []string{
		"order_id", "customer_id", "status", "total_minor", "currency", "line_count", "item_count",
		"payment_id", "payment_status", "paid_minor", "rejection_reason",
		"requested_at", "placed_at", "paid_at", "settled_at",
	}
}

// Values returns the row as text, one value per column of Columns: integers
// in decimal, times in RFC 3339 with nanoseconds in UTC, unknown facts as "".
// Two rows with equal Values carry the same facts.
func (r Row) Values() []string {
	return []string{
		r.OrderID, str(r.CustomerID), r.Status, integer(r.TotalMinor), str(r.Currency),
		integer(r.LineCount), integer(r.ItemCount),
		str(r.PaymentID), str(r.PaymentStatus), integer(r.PaidMinor), str(r.RejectionReason),
		timestamp(r.RequestedAt), timestamp(r.PlacedAt), timestamp(r.PaidAt), timestamp(r.SettledAt),
	}
}

func str(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func integer[N int32 | int64](n *N) string {
	if n == nil {
		return ""
	}
	return strconv.FormatInt(int64(*n), 10)
}

func timestamp(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
