package payments_test

import (
	"testing"

	"github.com/alpes/alpes/services/payments"
)

func TestGatewayDecide(t *testing.T) {
	g := payments.DefaultGateway()
	yen := payments.Gateway{Limits: map[string]int64{"JPY": 100000, "EUR": 100}}
	cases := []struct {
		name   string
		g      payments.Gateway
		c      payments.Charge
		reason string // "" means approved
	}{
		{"small", g, payments.Charge{CustomerID: "c", AmountMinor: 1, Currency: "EUR"}, ""},
		{"zero", g, payments.Charge{CustomerID: "c", AmountMinor: 0, Currency: "EUR"}, ""},
		{"at the limit", g, payments.Charge{CustomerID: "c", AmountMinor: 500000, Currency: "EUR"}, ""},
		{"above the limit", g, payments.Charge{CustomerID: "c", AmountMinor: 1234567, Currency: "EUR"},
			"amount 12345.67 EUR exceeds the limit of 5000.00 EUR"},
		{"blocked card", g, payments.Charge{CustomerID: "blocked-7", AmountMinor: 1, Currency: "EUR"}, "card blocked"},
		{"blocked card beats the limit", g, payments.Charge{CustomerID: "blocked-7", AmountMinor: 900000, Currency: "EUR"}, "card blocked"},
		{"prefix only at the start", g, payments.Charge{CustomerID: "not-blocked-7", AmountMinor: 1, Currency: "EUR"}, ""},
		{"currency not accepted", g, payments.Charge{CustomerID: "c", AmountMinor: 1, Currency: "CHF"}, `currency "CHF" is not accepted`},
		{"no minor unit", yen, payments.Charge{CustomerID: "c", AmountMinor: 100001, Currency: "JPY"},
			"amount 100001 JPY exceeds the limit of 100000 JPY"},
		{"no prefix blocks nobody", yen, payments.Charge{CustomerID: "blocked-1", AmountMinor: 5, Currency: "EUR"}, ""},
		{"zero gateway declines", payments.Gateway{}, payments.Charge{CustomerID: "c", AmountMinor: 1, Currency: "EUR"}, `currency "EUR" is not accepted`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := c.g.Decide(c.c)
			if d.Approved != (c.reason == "") || d.DeclineReason != c.reason {
				t.Errorf("Decide(%+v) = %+v, want reason %q", c.c, d, c.reason)
			}
		})
	}
}
