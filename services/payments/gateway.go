package payments

import (
	"fmt"
	"strings"
)

// Charge is what the gateway is asked to charge.
type Charge struct {
	// OrderID is the order being paid.
	OrderID string
	// CustomerID identifies the paying customer (and, in this fake, the card).
	CustomerID string
	// AmountMinor is the amount in minor units of Currency.
	AmountMinor int64
	// Currency is the ISO 4217 code of the amount.
	Currency string
}

// Decision is the gateway's answer to a Charge.
type Decision struct {
	// Approved is true when the amount was charged.
	Approved bool
	// DeclineReason says why a charge was declined; empty when approved.
	DeclineReason string
}

// Gateway is the deterministic fake payment gateway: its decision depends
// on the Charge only. The zero value declines everything (it accepts no
// currency); use DefaultGateway. A Gateway is a value and safe for
// concurrent use as long as Limits is not modified.
type Gateway struct {
	// Limits is the largest amount approved, in minor units, per currency;
	// a charge in a currency absent from it is declined.
	Limits map[string]int64
	// BlockedPrefix marks blocked cards: a customer id starting with it is
	// declined. Empty blocks nobody.
	BlockedPrefix string
}

// DefaultLimitEUR is DefaultGateway's limit: 5,000.00 EUR in cents.
const DefaultLimitEUR = 500000

// DefaultBlockedPrefix is DefaultGateway's mark of a blocked card.
const DefaultBlockedPrefix = "blocked-"

// DefaultGateway returns the gateway the service runs with unless told
// otherwise: EUR only, up to DefaultLimitEUR, DefaultBlockedPrefix blocked.
func DefaultGateway() Gateway {
	return Gateway{Limits: map[string]int64{"EUR": DefaultLimitEUR}, BlockedPrefix: DefaultBlockedPrefix}
}

// Decide applies the rules, in order: blocked card, unaccepted currency,
// amount above the currency's limit; anything else is approved.
func (g Gateway) Decide(c Charge) Decision {
	limit, accepted := g.Limits[c.Currency]
	switch {
	case g.BlockedPrefix != "" && strings.HasPrefix(c.CustomerID, g.BlockedPrefix):
		return Decision{DeclineReason: "card blocked"}
	case !accepted:
		return Decision{DeclineReason: fmt.Sprintf("currency %q is not accepted", c.Currency)}
	case c.AmountMinor > limit:
		return Decision{DeclineReason: fmt.Sprintf("amount %s exceeds the limit of %s",
			formatMinor(c.AmountMinor, c.Currency), formatMinor(limit, c.Currency))}
	}
	return Decision{Approved: true}
}

// zeroDecimal reports whether currency is one of the common ISO 4217
// currencies without a minor unit.
func zeroDecimal(currency string) bool {
	switch currency {
	case "JPY", "KRW", "CLP", "ISK", "VND":
		return true
	}
	return false
}

// formatMinor renders an amount for people, e.g. 500001 EUR → "5000.01 EUR".
// It assumes two decimals except for zeroDecimal currencies.
func formatMinor(minor int64, currency string) string {
	if zeroDecimal(currency) {
		return fmt.Sprintf("%d %s", minor, currency)
	}
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	return fmt.Sprintf("%s%d.%02d %s", sign, minor/100, minor%100, currency)
}
