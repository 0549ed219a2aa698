package reporting

import (
	"fmt"
	"strings"

	moneyv1 "github.com/alpes/alpes/proto/alpes/money/v1"
	ordersv1 "github.com/alpes/alpes/proto/alpes/orders/v1"
	paymentsv1 "github.com/alpes/alpes/proto/alpes/payments/v1"
)

// The timeline's human summaries, one sentence per event, written when the
// event is applied so the timeline reads the same whatever changes later.

func placedSummary(ev *ordersv1.OrderPlaced, items int32) string {
	lines := len(ev.GetLines())
	customer := ev.GetCustomerId()
	if customer == "" {
		customer = "an unknown customer"
	}
	return fmt.Sprintf("Order placed by %s: %d %s, %d %s, total %s.",
		customer, lines, plural(lines, "line", "lines"), items, plural(int(items), "item", "items"), money(ev.GetTotal()))
}

func confirmedSummary(ev *ordersv1.OrderConfirmed) string {
	s := "Order confirmed, total " + money(ev.GetTotal())
	if p := ev.GetPaymentId(); p != "" {
		s += ", settled by payment " + p
	}
	return s + "."
}

func rejectedSummary(ev *ordersv1.OrderRejected) string {
	s := "Order rejected (" + strings.ReplaceAll(rejectionReason(ev.GetReason()), "_", " ") + ")"
	if d := ev.GetDetail(); d != "" {
		s += ": " + d
	}
	return s + "."
}

func paymentSummary(ev *paymentsv1.PaymentProcessed) string {
	switch ev.GetStatus() {
	case paymentsv1.PaymentStatus_PAYMENT_STATUS_APPROVED:
		return fmt.Sprintf("Payment %s approved: %s charged.", ev.GetPaymentId(), money(ev.GetAmount()))
	default:
		s := fmt.Sprintf("Payment %s declined for %s", ev.GetPaymentId(), money(ev.GetAmount()))
		if r := ev.GetDeclineReason(); r != "" {
			s += ": " + r
		}
		return s + "."
	}
}

// rejectionReason names a reason for order_facts.rejection_reason:
// "unknown_product", "invalid_order", "payment_declined". A reason this
// version does not know is still a rejection (its comment in the proto says
// so) and is named by its number, "reason_7".
func rejectionReason(r ordersv1.RejectionReason) string {
	if name, ok := ordersv1.RejectionReason_name[int32(r)]; ok && r != ordersv1.RejectionReason_REJECTION_REASON_UNSPECIFIED {
		return strings.ToLower(strings.TrimPrefix(name, "REJECTION_REASON_"))
	}
	return fmt.Sprintf("reason_%d", int32(r))
}

func money(m *moneyv1.Money) string {
	if m == nil {
		return "unknown"
	}
	return formatMoney(m.GetAmountMinor(), m.GetCurrency())
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
