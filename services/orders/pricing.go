package orders

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/alpes/alpes/outbox/inbox"
	moneyv1 "github.com/alpes/alpes/proto/alpes/money/v1"
	ordersv1 "github.com/alpes/alpes/proto/alpes/orders/v1"
)

// MaxLines is the most lines an order may have: order_lines numbers them
// with a smallint.
const MaxLines = math.MaxInt16

// product is one catalogue entry, as pricing needs it.
type product struct {
	sku, name  string
	priceMinor int64
	currency   string
}

// pricedLine is one line of an order, priced.
type pricedLine struct {
	product
	quantity  int32
	lineMinor int64
}

// priced is an order that can be placed.
type priced struct {
	lines      []pricedLine
	totalMinor int64
	currency   string
}

// rejection says why a PlaceOrder cannot become an order.
type rejection struct {
	reason ordersv1.RejectionReason
	detail string
}

func invalid(format string, args ...any) *rejection {
	return &rejection{reason: ordersv1.RejectionReason_REJECTION_REASON_INVALID_ORDER, detail: fmt.Sprintf(format, args...)}
}

// checkShape rejects a command that cannot make an order whatever the
// catalogue holds. It also guards the database: Postgres text cannot hold
// NUL characters.
func checkShape(cmd *ordersv1.PlaceOrder) *rejection {
	lines := cmd.GetLines()
	switch {
	case len(lines) == 0:
		return invalid("the order has no lines")
	case len(lines) > MaxLines:
		return invalid("the order has %d lines, more than %d", len(lines), MaxLines)
	case strings.ContainsRune(cmd.GetCustomerId(), 0) || strings.ContainsRune(cmd.GetAddress(), 0):
		return invalid("the customer id or address holds a NUL character")
	}
	for i, l := range lines {
		if l.GetQuantity() < 1 {
			return invalid("line %d (%s): quantity %d, want at least 1", i+1, l.GetSku(), l.GetQuantity())
		}
		if strings.ContainsRune(l.GetSku(), 0) {
			return invalid("line %d: the sku holds a NUL character", i+1)
		}
	}
	return nil
}

// skus returns the distinct SKUs of the lines, in order of appearance.
func skus(lines []*ordersv1.OrderLine) []string {
	var out []string
	for _, l := range lines {
		if !slices.Contains(out, l.GetSku()) {
			out = append(out, l.GetSku())
		}
	}
	return out
}

// price prices lines, already checked by checkShape, from catalogue (by
// SKU). Unknown SKUs reject the order first, then mixed currencies and
// overflowing amounts.
func price(lines []*ordersv1.OrderLine, catalogue map[string]product) (priced, *rejection) {
	var unknown []string
	for _, sku := range skus(lines) {
		if _, ok := catalogue[sku]; !ok {
			unknown = append(unknown, fmt.Sprintf("%q", sku))
		}
	}
	if len(unknown) > 0 {
		return priced{}, &rejection{
			reason: ordersv1.RejectionReason_REJECTION_REASON_UNKNOWN_PRODUCT,
			detail: "unknown product " + strings.Join(unknown, ", "),
		}
	}
	p := priced{lines: make([]pricedLine, 0, len(lines))}
	for i, l := range lines {
		prod := catalogue[l.GetSku()]
		if p.currency == "" {
			p.currency = prod.currency
		}
		if prod.currency != p.currency {
			return priced{}, invalid("line %d (%s) is priced in %s, the order in %s", i+1, prod.sku, prod.currency, p.currency)
		}
		q := int64(l.GetQuantity())
		if prod.priceMinor > math.MaxInt64/q {
			return priced{}, invalid("line %d (%s): %d × %d overflows", i+1, prod.sku, q, prod.priceMinor)
		}
		lineMinor := prod.priceMinor * q
		if p.totalMinor > math.MaxInt64-lineMinor {
			return priced{}, invalid("the order total overflows at line %d (%s)", i+1, prod.sku)
		}
		p.totalMinor += lineMinor
		p.lines = append(p.lines, pricedLine{product: prod, quantity: l.GetQuantity(), lineMinor: lineMinor})
	}
	return p, nil
}

// isUUID reports whether s is a UUID in the canonical 36-character form,
// the only form the bff and payments mint.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	_, err := uuid.Parse(s)
	return err == nil
}

// requestTime is the command's requested_at. A command without one (the bff
// always sets it) falls back to the sender's commit time, then to now, so
// the order still has a start. It is truncated to Postgres's microseconds,
// so that every event of the order, whether it comes from the command or
// from the stored row, carries the same requested_at.
func requestTime(cmd *ordersv1.PlaceOrder, msg inbox.Message) time.Time {
	var t time.Time
	switch {
	case cmd.GetRequestedAt().IsValid():
		t = cmd.GetRequestedAt().AsTime()
	case !msg.CommitTime.IsZero():
		t = msg.CommitTime
	default:
		t = time.Now()
	}
	return t.Truncate(time.Microsecond)
}

// money returns an amount in minor units of currency.
func money(minor int64, currency string) *moneyv1.Money {
	return &moneyv1.Money{AmountMinor: minor, Currency: currency}
}

// stripNUL removes NUL characters, which Postgres text cannot hold.
func stripNUL(s string) string { return strings.ReplaceAll(s, "\x00", "") }
