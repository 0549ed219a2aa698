package orders

import (
	"math"
	"testing"

	ordersv1 "github.com/alpes/alpes/proto/alpes/orders/v1"
)

func TestPrice(t *testing.T) {
	catalogue := map[string]product{
		"AXE":  {sku: "AXE", name: "Axe", priceMinor: 8990, currency: "EUR"},
		"ROPE": {sku: "ROPE", name: "Rope", priceMinor: 20000, currency: "CHF"},
		"GOLD": {sku: "GOLD", name: "Gold", priceMinor: math.MaxInt64 / 3, currency: "EUR"},
	}
	line := func(sku string, q int32) *ordersv1.OrderLine { return &ordersv1.OrderLine{Sku: sku, Quantity: q} }
	invalid, unknown := ordersv1.RejectionReason_REJECTION_REASON_INVALID_ORDER, ordersv1.RejectionReason_REJECTION_REASON_UNKNOWN_PRODUCT
	cases := []struct {
		name   string
		lines  []*ordersv1.OrderLine
		total  int64
		reason ordersv1.RejectionReason // unspecified: priced
		detail string
	}{
		{"one line", []*ordersv1.OrderLine{line("AXE", 3)}, 26970, 0, ""},
		{"a sku on two lines", []*ordersv1.OrderLine{line("AXE", 1), line("AXE", 2)}, 26970, 0, ""},
		{"largest total", []*ordersv1.OrderLine{line("GOLD", 3)}, math.MaxInt64 / 3 * 3, 0, ""},
		{"unknown skus named once, in order", []*ordersv1.OrderLine{line("X", 1), line("AXE", 1), line("Y", 1), line("X", 2)}, 0, unknown,
			`unknown product "X", "Y"`},
		{"unknown beats mixed currencies", []*ordersv1.OrderLine{line("ROPE", 1), line("AXE", 1), line("X", 1)}, 0, unknown, `unknown product "X"`},
		{"mixed currencies", []*ordersv1.OrderLine{line("AXE", 1), line("ROPE", 1)}, 0, invalid, "line 2 (ROPE) is priced in CHF, the order in EUR"},
		{"line overflow", []*ordersv1.OrderLine{line("GOLD", 4)}, 0, invalid, ""},
		{"total overflow", []*ordersv1.OrderLine{line("GOLD", 3), line("AXE", 1)}, 0, invalid, "the order total overflows at line 2 (AXE)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, rej := price(c.lines, catalogue)
			switch {
			case c.reason == 0 && rej != nil:
				t.Fatalf("rejected: %+v", rej)
			case c.reason == 0:
				if p.totalMinor != c.total || p.currency != "EUR" || len(p.lines) != len(c.lines) {
					t.Errorf("priced %+v, want total %d EUR", p, c.total)
				}
			case rej == nil:
				t.Fatalf("priced %+v, want %s", p, c.reason)
			case rej.reason != c.reason || (c.detail != "" && rej.detail != c.detail):
				t.Errorf("rejection %+v, want %s %q", rej, c.reason, c.detail)
			}
		})
	}
}

func TestCheckShape(t *testing.T) {
	ok := &ordersv1.OrderLine{Sku: "AXE", Quantity: 1}
	cases := []struct {
		name string
		cmd  *ordersv1.PlaceOrder
		ok   bool
	}{
		{"one line", &ordersv1.PlaceOrder{Lines: []*ordersv1.OrderLine{ok}}, true},
		{"no lines", &ordersv1.PlaceOrder{}, false},
		{"zero quantity", &ordersv1.PlaceOrder{Lines: []*ordersv1.OrderLine{ok, {Sku: "AXE"}}}, false},
		{"NUL in customer", &ordersv1.PlaceOrder{CustomerId: "\x00", Lines: []*ordersv1.OrderLine{ok}}, false},
		{"NUL in sku", &ordersv1.PlaceOrder{Lines: []*ordersv1.OrderLine{{Sku: "A\x00", Quantity: 1}}}, false},
		{"most lines", &ordersv1.PlaceOrder{Lines: repeat(ok, MaxLines)}, true},
		{"too many lines", &ordersv1.PlaceOrder{Lines: repeat(ok, MaxLines+1)}, false},
	}
	for _, c := range cases {
		rej := checkShape(c.cmd)
		if (rej == nil) != c.ok || (rej != nil && rej.reason != ordersv1.RejectionReason_REJECTION_REASON_INVALID_ORDER) {
			t.Errorf("%s: checkShape = %+v, want ok=%t", c.name, rej, c.ok)
		}
	}
}

func repeat(l *ordersv1.OrderLine, n int) []*ordersv1.OrderLine {
	out := make([]*ordersv1.OrderLine, n)
	for i := range out {
		out[i] = l
	}
	return out
}
