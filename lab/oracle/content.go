package oracle

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/alpes/alpes/lab/loadgen"
	"github.com/alpes/alpes/services/eventcatalog"
)

// checkOutcomes compares what the client was told of each order, confirmed
// or rejected, with the order's final state in every database that has one.
func checkOutcomes(v *Verdict, ops []loadgen.Op, s *snapshot) {
	c := CheckResult{Name: "outcome", Rule: "what the client was told of an order (confirmed or rejected) is its final state in orders, the bff's view and reporting"}
	for _, op := range ops {
		if op.Outcome == "" {
			continue
		}
		c.Checked++
		id := op.OrderID
		var wrong []string
		for _, st := range []struct{ where, status string }{
			{"orders", s.orders[id].status}, {"the bff's view", s.views[id].status}, {"reporting", s.facts[id].status},
		} {
			if st.status != op.Outcome {
				wrong = append(wrong, fmt.Sprintf("%q in %s", st.status, st.where))
			}
		}
		if len(wrong) > 0 {
			c.fail("order %s (key %s): the client was told %s, the order is %s", id, op.Key, op.Outcome, strings.Join(wrong, ", "))
		}
	}
	v.Checks = append(v.Checks, c)
}

// checkContent compares what every expected order holds, in every database,
// with what its operation placed (expected's values; nil when the operation
// did not record it, and then the databases are compared with each other
// only) and with the catalogue's prices.
func checkContent(v *Verdict, s *snapshot, expected map[string]*loadgen.Order) {
	c := CheckResult{Name: "content", Rule: "every order holds what was placed: the bff's request, orders' lines at the catalogue's prices and their sum, one payment of that total, and the same figures in the bff's view and reporting"}
	for _, id := range slices.Sorted(maps.Keys(expected)) {
		c.Checked++
		if expected[id] == nil {
			v.Unrecorded++
		}
		if d := contentDiffs(s, id, expected[id]); len(d) > 0 {
			c.fail("order %s: %s", id, strings.Join(d, "; "))
		}
	}
	v.Checks = append(v.Checks, c)
}

// diffs collects, for one order, what differs from what it should be.
type diffs []string

// check records what as a difference when got and want do not print alike.
func (d *diffs) check(what string, got, want any) {
	if g, w := show(got), show(want); g != w {
		*d = append(*d, fmt.Sprintf("%s %s, want %s", what, g, w))
	}
}

// show prints a value for a violation: text quoted, the rest as it prints.
func show(x any) string {
	if s, ok := x.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(x)
}

// contentDiffs lists how order id differs, in each database that holds it,
// from what was asked (when unknown, from the bff's request) and from
// orders' own figures. Missing rows are the effects check's to report.
func contentDiffs(s *snapshot, id string, asked *loadgen.Order) diffs {
	var d diffs
	want := asked
	req, requested := s.requests[id]
	switch {
	case requested && asked != nil:
		d.request(req, asked)
	case requested:
		want = req.asOrder() // what the bff accepted is all there is to compare with
	}
	o, ok := s.orders[id]
	if !ok {
		return d
	}
	placed := countEvents(s, id, typeOrderPlaced) > 0
	d.order(s, id, o, want, placed)
	pay := onlyPayment(s.payments[id])
	if placed && pay != nil {
		d.payment(o, *pay)
	}
	if vw, ok := s.views[id]; ok {
		d.view(s, id, o, vw, placed)
	}
	if f, ok := s.facts[id]; ok && placed {
		d.facts(s, id, o, f, pay)
	}
	return d
}

// request compares the bff's request with what the client asked.
func (d *diffs) request(req request, asked *loadgen.Order) {
	d.check("the bff's request: customer", req.customer, asked.CustomerID)
	d.check("the bff's request: address", req.address, asked.Address)
	d.check("the bff's request: lines", req.lines, askedLines(asked))
}

// askedLines are the lines of what the client placed.
func askedLines(o *loadgen.Order) []line {
	var out []line
	for _, it := range o.Items {
		out = append(out, line{sku: it.SKU, quantity: it.Quantity})
	}
	return out
}

// asOrder is the request as the client would have placed it.
func (r request) asOrder() *loadgen.Order {
	o := &loadgen.Order{CustomerID: r.customer, Address: r.address}
	for _, l := range r.lines {
		o.Items = append(o.Items, loadgen.Item{SKU: l.sku, Quantity: l.quantity})
	}
	return o
}

// onlyPayment is the order's one payment; nil when it has none or several
// (which the effects check reports).
func onlyPayment(ps []payment) *payment {
	if len(ps) != 1 {
		return nil
	}
	return &ps[0]
}

// order compares orders' order and lines with what was asked (nil: not
// known) and with the catalogue. An order rejected before placement has no
// lines.
func (d *diffs) order(s *snapshot, id string, o order, asked *loadgen.Order, placed bool) {
	lines := s.lines[id]
	if asked != nil {
		d.check("orders: customer", o.customer, asked.CustomerID)
		d.check("orders: address", o.address, asked.Address)
	}
	if !placed {
		d.check("orders: lines of an order rejected at placement", len(lines), 0)
		return
	}
	if asked != nil {
		var got []line
		for _, l := range lines {
			got = append(got, l.line)
		}
		d.check("orders: lines", got, askedLines(asked))
	}
	d.prices(s.catalogue, o, lines)
}

// prices checks each line at the catalogue's name and price of its product
// (unless the product changed after the order was placed: the line keeps
// what it cost then), and the order's total as their sum.
func (d *diffs) prices(catalogue map[string]product, o order, lines []pricedLine) {
	var sum int64
	for i, l := range lines {
		sum += int64(l.quantity) * l.unit.minor
		p, ok := catalogue[l.sku]
		switch {
		case !ok:
			*d = append(*d, fmt.Sprintf("orders: line %d sells %s, which the catalogue lacks", i+1, l.sku))
		case !p.updated.After(o.placedAt):
			d.check(fmt.Sprintf("orders: line %d", i+1), l, pricedLine{line: l.line, name: p.name, unit: p.price})
		}
	}
	d.check("orders: total", o.total, money{minor: sum, currency: o.total.currency})
}

// payment compares the order's payment with the order: the amount is its
// total, the order names the payment, and an approved payment is a
// confirmed order, a declined one a rejected order.
func (d *diffs) payment(o order, p payment) {
	d.check("payments: amount", p.amount, o.total)
	d.check("orders: payment id", o.paymentID, p.id)
	switch o.status {
	case "confirmed":
		d.check("payments: status of a confirmed order", p.status, "approved")
	case "rejected":
		d.check("payments: status of a rejected order", p.status, "declined")
	}
}

// view compares the bff's view with orders: the customer; the priced lines
// and total once placed, the requested lines and no total otherwise; the
// payment of a confirmed order.
func (d *diffs) view(s *snapshot, id string, o order, vw view, placed bool) {
	d.check("the bff's view: customer", vw.customer, o.customer)
	wantLines, wantTotal := s.lines[id], o.total
	if !placed {
		wantLines, wantTotal = nil, money{}
		for _, l := range s.requests[id].lines {
			wantLines = append(wantLines, pricedLine{line: l})
		}
	}
	d.check("the bff's view: lines", vw.lines, wantLines)
	d.check("the bff's view: total", vw.total, wantTotal)
	wantPayment := ""
	if o.status == "confirmed" {
		wantPayment = o.paymentID
	}
	d.check("the bff's view: payment id", vw.paymentID, wantPayment)
}

// facts compares reporting's facts of a placed order with orders and its
// payment (pay, nil when it has not exactly one).
func (d *diffs) facts(s *snapshot, id string, o order, f facts, pay *payment) {
	lines := s.lines[id]
	items := 0
	for _, l := range lines {
		items += l.quantity
	}
	d.check("reporting: customer", f.customer, o.customer)
	d.check("reporting: total", f.total, o.total)
	d.check("reporting: line count", f.lineCount, len(lines))
	d.check("reporting: item count", f.itemCount, items)
	if pay != nil {
		d.check("reporting: paid", f.paid, pay.amount)
		d.check("reporting: payment status", f.paymentStatus, pay.status)
		d.check("reporting: payment id", f.paymentID, pay.id)
	}
}

// checkTimeline checks reporting's timeline by event id: per order, one
// entry for each of its events on the order and payment topics, of the
// event's type, in causal order, and no entry for anything else.
func checkTimeline(v *Verdict, topics eventcatalog.Topics, s *snapshot, expected map[string]*loadgen.Order) {
	c := CheckResult{Name: "timeline", Rule: "reporting's timeline holds, per order, one entry for each of its order and payment events, by event id and type, in causal order, and nothing else"}
	ids := slices.Collect(maps.Keys(expected))
	for id := range s.timeline {
		if _, ok := expected[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		c.Checked++
		if d := timelineDiffs(topics, s, id); len(d) > 0 {
			c.fail("order %s: %s", id, strings.Join(d, "; "))
		}
	}
	v.Checks = append(v.Checks, c)
}

// timelineDiffs lists how order id's timeline differs from its events.
func timelineDiffs(topics eventcatalog.Topics, s *snapshot, id string) []string {
	want := map[string]string{} // event id → type
	for _, e := range s.eventsByKey[id] {
		if e.topic == topics.OrderEvents || e.topic == topics.PaymentEvents {
			want[e.id] = e.typ
		}
	}
	var d []string
	tl := s.timeline[id]
	listed := map[string]bool{}
	for i, en := range tl {
		typ, ok := want[en.eventID]
		switch {
		case listed[en.eventID]:
			d = append(d, fmt.Sprintf("two entries for event %s", en.eventID))
		case !ok:
			d = append(d, fmt.Sprintf("an entry for %s event %s, which is not one of the order's events", en.typ, en.eventID))
		case typ != en.typ:
			d = append(d, fmt.Sprintf("the entry for event %s says %s, the event is %s", en.eventID, en.typ, typ))
		}
		listed[en.eventID] = true
		if i > 0 && causalRank[en.typ] < causalRank[tl[i-1].typ] {
			d = append(d, fmt.Sprintf("%s after %s", en.typ, tl[i-1].typ))
		}
	}
	for _, eid := range slices.Sorted(maps.Keys(want)) {
		if !listed[eid] {
			d = append(d, fmt.Sprintf("no entry for %s event %s", want[eid], eid))
		}
	}
	return d
}
