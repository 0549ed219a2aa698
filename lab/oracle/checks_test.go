package oracle

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alpes/alpes/lab/loadgen"
	"github.com/alpes/alpes/services/eventcatalog"
)

// testTopics are the worlds' topics: a tenant other than the default, so
// that nothing in the checks can lean on the default's names.
var testTopics = func() eventcatalog.Topics {
	t, err := eventcatalog.TopicsFor("oracle-test")
	if err != nil {
		panic(err)
	}
	return t
}()

// world is a consistent system of n orders, as the oracle would read it:
// every order but the last placed and paid, even ones confirmed and odd
// ones rejected (payment declined); the last (when n > 1) rejected at
// placement, before any payment.
type world struct {
	ops    []loadgen.Op
	snap   *snapshot
	broker map[string][]brokerMessage
	slots  []slotState
	topics eventcatalog.Topics
	cfg    Config // Ops and Topics are the world's
}

// The worlds' catalogue: two products in euro cents.
var (
	skuAxe, skuRope = "AXE-1", "ROPE-2"
	worldCatalogue  = map[string]product{
		skuAxe:  {name: "Ice axe", price: money{8990, "EUR"}},
		skuRope: {name: "Rope", price: money{250, "EUR"}},
	}
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newWorld(n int) *world { return newWorldOn(testTopics, n) }

// newWorldOn is newWorld with the given topics.
func newWorldOn(topics eventcatalog.Topics, n int) *world {
	w := &world{
		topics: topics,
		snap:   newSnapshot(),
		broker: map[string][]brokerMessage{},
		slots:  []slotState{{name: "alpes_relay_bff", caughtUp: true}},
	}
	for _, c := range []string{"bff", "orders", "payments", "reporting"} {
		w.snap.inbox[c] = map[string]string{}
	}
	for sku, p := range worldCatalogue {
		w.snap.catalogue[sku] = p
	}
	for i := range n {
		w.addOrder(i, n > 1 && i == n-1)
	}
	return w
}

// addOrder adds order i: placed and paid, or rejected at placement.
func (w *world) addOrder(i int, rejectAtPlacement bool) {
	id, key := fmt.Sprintf("order-%03d", i), fmt.Sprintf("key-%03d", i)
	asked := &loadgen.Order{CustomerID: fmt.Sprintf("customer-%d", i), Address: fmt.Sprintf("Alpenweg %d", i),
		Items: []loadgen.Item{{SKU: skuAxe, Quantity: 1 + i%3}, {SKU: skuRope, Quantity: 2}}}
	status := []string{"confirmed", "rejected"}[i%2]
	if rejectAtPlacement {
		status = "rejected"
	}
	w.ops = append(w.ops, loadgen.Op{Key: key, OrderID: id, Fate: loadgen.FateOK, Outcome: status, Order: asked})
	s := w.snap
	req := request{customer: asked.CustomerID, address: asked.Address, lines: askedLines(asked)}
	s.keys[key] = keyRecord{orderID: id, status: 202, answered: id}
	s.requests[id] = req
	w.addEvent(event{topic: w.topics.OrderCommands, typ: typePlaceOrder, source: "bff", key: id}, false)
	if rejectAtPlacement {
		s.orders[id] = order{status: status, customer: asked.CustomerID, address: asked.Address, total: money{0, "XXX"}, placedAt: t0}
		v := view{status: status, customer: asked.CustomerID}
		for _, l := range req.lines {
			v.lines = append(v.lines, pricedLine{line: l})
		}
		s.views[id] = v
		s.facts[id] = facts{status: status}
		w.addEvent(event{topic: w.topics.OrderEvents, typ: typeOrderRejected, source: "orders", key: id}, true)
		return
	}
	o := order{status: status, customer: asked.CustomerID, address: asked.Address, placedAt: t0.Add(time.Hour), total: money{0, "EUR"}}
	items := 0
	for _, l := range req.lines {
		p := worldCatalogue[l.sku]
		s.lines[id] = append(s.lines[id], pricedLine{line: l, name: p.name, unit: p.price})
		o.total.minor += int64(l.quantity) * p.price.minor
		items += l.quantity
	}
	pay := payment{id: "payment-" + id, status: map[string]string{"confirmed": "approved", "rejected": "declined"}[status], amount: o.total}
	o.paymentID = pay.id
	s.orders[id] = o
	s.payments[id] = []payment{pay}
	v := view{status: status, customer: o.customer, total: o.total, lines: s.lines[id]}
	if status == "confirmed" {
		v.paymentID = pay.id
	}
	s.views[id] = v
	s.facts[id] = facts{status: status, customer: o.customer, total: o.total, paid: pay.amount, paymentStatus: pay.status,
		paymentID: pay.id, lineCount: len(s.lines[id]), itemCount: items}
	settle := typeOrderConfirmed
	if status == "rejected" {
		settle = typeOrderRejected
	}
	w.addEvent(event{topic: w.topics.OrderEvents, typ: typeOrderPlaced, source: "orders", key: id}, true)
	w.addEvent(event{topic: w.topics.PaymentEvents, typ: typePaymentProcessed, source: "payments", key: id}, true)
	w.addEvent(event{topic: w.topics.OrderEvents, typ: settle, source: "orders", key: id}, true)
}

// addEvent adds e to its outbox, the inboxes of its topic's consumers and
// its topic, numbered after its order's other events, and to the timeline
// when onTimeline.
func (w *world) addEvent(e event, onTimeline bool) {
	s := w.snap
	j := len(s.eventsByKey[e.key])
	e.id = fmt.Sprintf("%s-e%d", e.key, j)
	e.created = t0.Add(time.Duration(len(s.events)) * time.Millisecond)
	e.payload = []byte("payload of " + e.id)
	s.events[e.id] = e
	s.eventsByKey[e.key] = append(s.eventsByKey[e.key], e)
	for consumer, topics := range consumedTopics(w.topics) {
		if slices.Contains(topics, e.topic) {
			s.inbox[consumer][e.id] = e.topic
		}
	}
	w.broker[e.topic] = append(w.broker[e.topic], brokerMessage{eventID: e.id, typ: e.typ, key: e.key, payload: e.payload})
	if onTimeline {
		s.timeline[e.key] = append(s.timeline[e.key], timelineEntry{eventID: e.id, typ: e.typ, occurred: e.created})
	}
}

func (w *world) verdict() Verdict {
	v := Verdict{Quiet: true}
	cfg := w.cfg
	cfg.Ops, cfg.Topics = w.ops, w.topics
	judge(&v, cfg, w.snap, w.broker, w.slots)
	return v
}

// edit applies change to the map entry m[k], a struct held by value.
func edit[T any](m map[string]T, k string, change func(*T)) {
	x := m[k]
	change(&x)
	m[k] = x
}

func TestACleanSystemPasses(t *testing.T) {
	v := newWorld(10).verdict()
	if !v.OK() {
		t.Fatalf("a clean system fails:\n%s", v)
	}
	if v.Orders != 10 || v.Ops.OK != 10 || v.Events[testTopics.OrderEvents] != 19 || v.Unrecorded != 0 {
		t.Errorf("verdict counts: %+v", v)
	}
	for _, c := range v.Checks {
		if c.Checked == 0 {
			t.Errorf("check %s looked at nothing", c.Name)
		}
	}
	if !strings.Contains(v.String(), "CLEAN") {
		t.Errorf("String() = %s", v)
	}
}

// violation is one way to break a clean world of 10 orders: the check that
// must find it, any others that may find it too ("" check: none may), and
// what the violation must say.
type violation struct {
	name   string
	check  string
	also   []string
	says   string
	break_ func(w *world)
}

// TestEachViolationIsFound breaks a clean system in one way per case and
// checks that the check responsible, and only the checks named, find it,
// and that the violation names what differed.
func TestEachViolationIsFound(t *testing.T) {
	var cases []violation
	for _, group := range [][]violation{ledgerCases(), effectsCases(), outcomeCases(), contentCases(), orderCases(), brokerCases(), inboxCases()} {
		cases = append(cases, group...)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(10)
			c.break_(w)
			v := w.verdict()
			found := false
			for _, r := range v.Checks {
				if r.Name == c.check && r.Failed > 0 {
					found = true
					if !slices.ContainsFunc(r.Violations, func(s string) bool { return strings.Contains(s, c.says) }) {
						t.Errorf("check %s does not say %q: %q", r.Name, c.says, r.Violations)
					}
				}
				if r.Failed > 0 && r.Name != c.check && !slices.Contains(c.also, r.Name) {
					t.Errorf("check %s: %d violations %q", r.Name, r.Failed, r.Violations)
				}
			}
			if c.check != "" && !found {
				t.Errorf("check %s found nothing:\n%s", c.check, v)
			}
			if v.OK() != (c.check == "") {
				t.Errorf("OK() = %v:\n%s", v.OK(), v)
			}
		})
	}
}

func ledgerCases() []violation {
	return []violation{
		{"a failed operation was written", "ledger", []string{"effects", "outcome"}, "failed operation key-000", func(w *world) { w.ops[0].Fate = loadgen.FateFailed }},
		{"a key used twice", "ledger", nil, "key key-003 used by two operations", func(w *world) { w.ops = append(w.ops, w.ops[3]) }},
		{"an ok operation has no record", "ledger", nil, "ok operation key-001 (order order-001) has no idempotency record", func(w *world) { delete(w.snap.keys, "key-001") }},
		{"an ok operation was told another order", "ledger", []string{"effects", "terminal"}, "the client was told order order-999, the bff recorded order-002", func(w *world) {
			w.ops[2].OrderID, w.ops[2].Outcome = "order-999", ""
		}},
		{"an unknown operation was told another order", "ledger", nil, "unknown operation key-002: told order order-999", func(w *world) {
			w.ops[2].OrderID, w.ops[2].Fate, w.ops[2].Outcome = "order-999", loadgen.FateUnknown, ""
		}},
		{"an idempotency record nobody made", "ledger", nil, "idempotency record key-stray (order order-003) belongs to no operation", func(w *world) {
			w.snap.keys["key-stray"] = keyRecord{orderID: "order-003", status: 202, answered: "order-003"}
		}},
		{"an idempotency record replays another order", "ledger", nil, "key-004 of order order-004 would replay status 202 naming order \"order-005\"", func(w *world) {
			edit(w.snap.keys, "key-004", func(r *keyRecord) { r.answered = "order-005" })
		}},
		{"an idempotency record replays a refusal", "ledger", nil, "would replay status 500", func(w *world) {
			edit(w.snap.keys, "key-004", func(r *keyRecord) { r.status = 500 })
		}},
		{"no order at all", "load", nil, "0 orders, fewer than the 1 required", func(w *world) { *w = *newWorld(0) }},
		{"fewer orders than the minimum", "load", nil, "10 orders, fewer than the 11 required", func(w *world) { w.cfg.MinOrders = 11 }},
		{"an unknown operation written once is expected", "", nil, "", func(w *world) {
			w.ops[7].Fate, w.ops[7].OrderID, w.ops[7].Outcome = loadgen.FateUnknown, "", ""
		}},
		{"an unknown operation not written is fine", "", nil, "", func(w *world) {
			w.ops = append(w.ops, loadgen.Op{Key: "key-never", Fate: loadgen.FateUnknown})
		}},
		{"a failed operation not written is fine", "", nil, "", func(w *world) {
			w.ops = append(w.ops, loadgen.Op{Key: "key-refused", Fate: loadgen.FateFailed, Status: 503})
		}},
	}
}

func effectsCases() []violation {
	return []violation{
		{"a request missing", "effects", nil, "order order-003: no request in the bff", func(w *world) { delete(w.snap.requests, "order-003") }},
		{"a PlaceOrder twice", "effects", nil, "order order-003: 2 PlaceOrder commands", func(w *world) {
			w.addEvent(event{topic: testTopics.OrderCommands, typ: typePlaceOrder, source: "bff", key: "order-003"}, false)
		}},
		{"an order missing", "effects", []string{"terminal", "outcome"}, "order order-003: no order in orders", func(w *world) { delete(w.snap.orders, "order-003") }},
		{"an order settled twice", "effects", []string{"timeline"}, "order order-003: 1 OrderPlaced and 2 settling events", func(w *world) {
			w.addEvent(event{topic: testTopics.OrderEvents, typ: typeOrderRejected, source: "orders", key: "order-003"}, false)
		}},
		{"a payment missing", "effects", nil, "order order-003: placed 1 times, 0 payments", func(w *world) { delete(w.snap.payments, "order-003") }},
		{"a payment twice", "effects", nil, "order order-003: placed 1 times, 2 payments", func(w *world) {
			w.snap.payments["order-003"] = append(w.snap.payments["order-003"], w.snap.payments["order-003"][0])
		}},
		{"facts missing", "effects", []string{"terminal", "outcome"}, "order order-003: no facts in reporting", func(w *world) { delete(w.snap.facts, "order-003") }},
		{"a view missing", "effects", []string{"terminal", "outcome"}, "order order-003: no view in the bff", func(w *world) { delete(w.snap.views, "order-003") }},
		{"an order without an operation", "effects", nil, "order order-stray has an order in orders but no ok or unknown operation", func(w *world) {
			w.snap.orders["order-stray"] = order{status: "confirmed"}
		}},
		{"a view without an operation", "effects", nil, "order order-stray has a view in the bff but no ok or unknown operation", func(w *world) {
			w.snap.views["order-stray"] = view{status: "pending"}
		}},
		{"a timeline without an operation", "effects", []string{"timeline"}, "order order-stray has a timeline in reporting", func(w *world) {
			w.snap.timeline["order-stray"] = []timelineEntry{{eventID: "e-stray", typ: typeOrderPlaced}}
		}},
		{"an order left pending", "terminal", []string{"outcome", "content"}, `order order-004 is "placed" in orders`, func(w *world) {
			edit(w.snap.orders, "order-004", func(o *order) { o.status = "placed" })
		}},
		{"the view disagrees", "terminal", []string{"outcome"}, `order order-004 is confirmed in orders, "rejected" in the bff's view`, func(w *world) {
			edit(w.snap.views, "order-004", func(v *view) { v.status = "rejected" })
		}},
	}
}

func outcomeCases() []violation {
	return []violation{
		{"the client was told rejected, the order is confirmed", "outcome", nil,
			`order order-004 (key key-004): the client was told rejected, the order is "confirmed" in orders, "confirmed" in the bff's view, "confirmed" in reporting`,
			func(w *world) { w.ops[4].Outcome = "rejected" }},
		{"the client was told confirmed, reporting says rejected", "outcome", []string{"terminal"}, `told confirmed, the order is "rejected" in reporting`,
			func(w *world) { edit(w.snap.facts, "order-004", func(f *facts) { f.status = "rejected" }) }},
		{"an outcome the client never saw is not compared", "", nil, "", func(w *world) { w.ops[4].Outcome = "" }},
	}
}

// contentCases change one figure of one order each.
func contentCases() []violation {
	o3, o4, o5, o9 := "order-003", "order-004", "order-005", "order-009"
	return []violation{
		{"the request's customer", "content", nil, `order order-003: the bff's request: customer "customer-x", want "customer-3"`,
			func(w *world) { edit(w.snap.requests, o3, func(r *request) { r.customer = "customer-x" }) }},
		{"the request's address", "content", nil, `the bff's request: address "elsewhere", want "Alpenweg 3"`,
			func(w *world) { edit(w.snap.requests, o3, func(r *request) { r.address = "elsewhere" }) }},
		{"the request's lines", "content", nil, "the bff's request: lines [1 × AXE-1 2 × ROPE-2], want [1 × AXE-1 2 × ROPE-2 1 × AXE-1]",
			func(w *world) {
				w.ops[3].Order.Items = append(w.ops[3].Order.Items, loadgen.Item{SKU: skuAxe, Quantity: 1})
			}},
		{"the order's customer", "content", nil, `orders: customer "customer-x", want "customer-3"`,
			func(w *world) { edit(w.snap.orders, o3, func(o *order) { o.customer = "customer-x" }) }},
		{"the order's address", "content", nil, `orders: address "elsewhere", want "Alpenweg 3"`,
			func(w *world) { edit(w.snap.orders, o3, func(o *order) { o.address = "elsewhere" }) }},
		{"the order's quantity", "content", nil, "orders: lines [2 × AXE-1 2 × ROPE-2], want [1 × AXE-1 2 × ROPE-2]",
			func(w *world) { w.snap.lines[o3][0].quantity = 2 }},
		{"a line priced off the catalogue", "content", nil, `orders: line 2 2 × ROPE-2 "Rope" at 199 EUR, want 2 × ROPE-2 "Rope" at 250 EUR`,
			func(w *world) { w.snap.lines[o3][1].unit.minor = 199 }},
		{"a line named off the catalogue", "content", nil, `orders: line 1 1 × AXE-1 "Axe" at 8990 EUR, want 1 × AXE-1 "Ice axe" at 8990 EUR`,
			func(w *world) { w.snap.lines[o3][0].name = "Axe" }},
		{"a product the catalogue lacks", "content", nil, "orders: line 2 sells ROPE-2, which the catalogue lacks",
			func(w *world) { delete(w.snap.catalogue, skuRope) }},
		{"a product repriced after placement is not compared", "", nil, "",
			func(w *world) {
				edit(w.snap.catalogue, skuRope, func(p *product) { p.price.minor, p.updated = 300, t0.Add(2*time.Hour) })
			}},
		{"a total that is not the sum of the lines", "content", nil, "orders: total 9491 EUR, want 9490 EUR",
			func(w *world) { edit(w.snap.orders, o3, func(o *order) { o.total.minor++ }) }},
		{"an order rejected at placement with lines", "content", nil, "order order-009: orders: lines of an order rejected at placement 1, want 0",
			func(w *world) { w.snap.lines[o9] = []pricedLine{{line: line{skuAxe, 1}}} }},
		{"a payment of another amount", "content", nil, "order order-003: payments: amount 9490 USD, want 9490 EUR",
			func(w *world) { w.snap.payments[o3][0].amount.currency = "USD" }},
		{"the order names another payment", "content", nil, `orders: payment id "payment-x", want "payment-order-003"`,
			func(w *world) { edit(w.snap.orders, o3, func(o *order) { o.paymentID = "payment-x" }) }},
		{"a confirmed order whose payment was declined", "content", nil, `payments: status of a confirmed order "declined", want "approved"`,
			func(w *world) { w.snap.payments[o4][0].status = "declined" }},
		{"a rejected order whose payment was approved", "content", nil, `payments: status of a rejected order "approved", want "declined"`,
			func(w *world) { w.snap.payments[o5][0].status = "approved" }},
		{"the view's customer", "content", nil, `the bff's view: customer "customer-x", want "customer-3"`,
			func(w *world) { edit(w.snap.views, o3, func(v *view) { v.customer = "customer-x" }) }},
		{"the view's lines", "content", nil, `the bff's view: lines [1 × AXE-1 "Ice axe" at 8990 EUR], want [1 × AXE-1 "Ice axe" at 8990 EUR 2 × ROPE-2 "Rope" at 250 EUR]`,
			func(w *world) { edit(w.snap.views, o3, func(v *view) { v.lines = v.lines[:1] }) }},
		{"the view of an order rejected at placement", "content", nil, "order order-009: the bff's view: lines [1 × AXE-1 2 × ROPE-2], want [1 × AXE-1 2 × ROPE-2 1 × AXE-1]",
			func(w *world) {
				edit(w.snap.requests, o9, func(r *request) { r.lines = append(r.lines, line{skuAxe, 1}) })
				w.ops[9].Order = nil // the request is all there is to compare with
			}},
		{"the view's total", "content", nil, "the bff's view: total none, want 9490 EUR",
			func(w *world) { edit(w.snap.views, o3, func(v *view) { v.total = money{} }) }},
		{"the view's payment", "content", nil, `the bff's view: payment id "payment-order-005", want ""`,
			func(w *world) { edit(w.snap.views, o5, func(v *view) { v.paymentID = "payment-order-005" }) }},
		{"reporting's customer", "content", nil, `reporting: customer "", want "customer-3"`,
			func(w *world) { edit(w.snap.facts, o3, func(f *facts) { f.customer = "" }) }},
		{"reporting's total", "content", nil, "reporting: total 1 EUR, want 9490 EUR",
			func(w *world) { edit(w.snap.facts, o3, func(f *facts) { f.total.minor = 1 }) }},
		{"reporting's line count", "content", nil, "reporting: line count 3, want 2",
			func(w *world) { edit(w.snap.facts, o3, func(f *facts) { f.lineCount = 3 }) }},
		{"reporting's item count", "content", nil, "reporting: item count 4, want 3",
			func(w *world) { edit(w.snap.facts, o3, func(f *facts) { f.itemCount = 4 }) }},
		{"reporting's paid amount", "content", nil, "reporting: paid none, want 9490 EUR",
			func(w *world) { edit(w.snap.facts, o3, func(f *facts) { f.paid = money{} }) }},
		{"reporting's payment status", "content", nil, `reporting: payment status "approved", want "declined"`,
			func(w *world) { edit(w.snap.facts, o3, func(f *facts) { f.paymentStatus = "approved" }) }},
		{"reporting's payment id", "content", nil, `reporting: payment id "payment-x", want "payment-order-003"`,
			func(w *world) { edit(w.snap.facts, o3, func(f *facts) { f.paymentID = "payment-x" }) }},
		{"an unrecorded order is compared with its request", "content", nil, `orders: customer "customer-x", want "customer-3"`,
			func(w *world) {
				w.ops[3].Order = nil
				edit(w.snap.orders, o3, func(o *order) { o.customer = "customer-x" })
			}},
	}
}

func orderCases() []violation {
	return []violation{
		{"an order's events out of order on the broker", "order", nil, "order order-000 on persistent://oracle-test/orders/events.v1: broker order [order-000-e3 order-000-e1]", func(w *world) {
			m := w.broker[testTopics.OrderEvents]
			m[0], m[1] = m[1], m[0] // order-000's OrderPlaced after its OrderConfirmed
		}},
		{"a timeline out of causal order", "timeline", nil, "order order-005: alpes.payments.v1.PaymentProcessed after alpes.orders.v1.OrderRejected", func(w *world) {
			tl := w.snap.timeline["order-005"]
			tl[0], tl[2] = tl[2], tl[0]
		}},
		{"a timeline entry missing", "timeline", nil, "order order-006: no entry for alpes.payments.v1.PaymentProcessed event order-006-e2", func(w *world) {
			w.snap.timeline["order-006"] = slices.Delete(w.snap.timeline["order-006"], 1, 2)
		}},
		{"a timeline entry for another order's event, the count intact", "timeline", nil,
			"order order-006: an entry for alpes.payments.v1.PaymentProcessed event order-007-e2, which is not one of the order's events; no entry for alpes.payments.v1.PaymentProcessed event order-006-e2",
			func(w *world) { w.snap.timeline["order-006"][1].eventID = "order-007-e2" }},
		{"a timeline entry of the wrong type", "timeline", nil, "the entry for event order-006-e1 says alpes.orders.v1.OrderRejected, the event is alpes.orders.v1.OrderPlaced", func(w *world) {
			w.snap.timeline["order-006"][0].typ = typeOrderRejected
		}},
		{"a timeline entry twice", "timeline", nil, "order order-006: two entries for event order-006-e3", func(w *world) {
			w.snap.timeline["order-006"] = append(w.snap.timeline["order-006"], w.snap.timeline["order-006"][2])
		}},
		{"a slot behind", "slots", nil, "slot alpes_relay_bff", func(w *world) { w.slots[0].caughtUp = false }},
	}
}

func brokerCases() []violation {
	return []violation{
		{"an event lost on the broker", "broker", []string{"order"}, "alpes.payments.v1.PaymentProcessed event order-000-e2 (key order-000) from payments's outbox never reached", func(w *world) {
			w.broker[testTopics.PaymentEvents] = w.broker[testTopics.PaymentEvents][1:]
		}},
		{"an event twice on the broker", "broker", nil, "holds alpes.orders.v1.PlaceOrder event order-003-e0 more than once", func(w *world) {
			m := w.broker[testTopics.OrderCommands]
			w.broker[testTopics.OrderCommands] = append(m, m[3])
		}},
		{"a replayed copy is fine", "", nil, "", func(w *world) {
			m := w.broker[testTopics.OrderCommands][3]
			m.replayed = true
			w.broker[testTopics.OrderCommands] = append(w.broker[testTopics.OrderCommands], m)
		}},
		{"an event id in two outboxes", "broker", nil, "event id order-003-e1 is in two outboxes", func(w *world) {
			w.snap.duplicateIDs = append(w.snap.duplicateIDs, "order-003-e1")
		}},
		{"an event no outbox has", "broker", nil, "holds event e-unknown (key k-unknown), which no outbox has", func(w *world) {
			w.broker[testTopics.OrderEvents] = append(w.broker[testTopics.OrderEvents], brokerMessage{eventID: "e-unknown", key: "k-unknown"})
		}},
		{"an event on another topic", "broker", []string{"order"}, "event order-000-e0 is on persistent://oracle-test/catalog/events.v1, its outbox row says persistent://oracle-test/orders/commands.v1", func(w *world) {
			m := w.broker[testTopics.OrderCommands]
			w.broker[testTopics.CatalogEvents] = append(w.broker[testTopics.CatalogEvents], m[0])
			w.broker[testTopics.OrderCommands] = m[1:]
		}},
		{"a payload altered", "broker", nil, "alpes.orders.v1.OrderPlaced event order-003-e1 (order order-003) on persistent://oracle-test/orders/events.v1 differs from its outbox row: payload of 23 bytes, the row's 23, first different at byte 11", func(w *world) {
			m := &w.broker[testTopics.OrderEvents][6]
			m.payload = append([]byte(nil), m.payload...)
			m.payload[11] ^= 1
		}},
		{"a payload cut short", "broker", nil, "payload of 20 bytes, the row's 23, first different at byte 20", func(w *world) {
			m := &w.broker[testTopics.OrderEvents][6]
			m.payload = m.payload[:20]
		}},
		{"a type altered", "broker", nil, `type "alpes.orders.v1.OrderConfirmed", the row's "alpes.orders.v1.OrderPlaced"`, func(w *world) {
			w.broker[testTopics.OrderEvents][6].typ = typeOrderConfirmed
		}},
		{"a key altered", "broker", []string{"order"}, `key "order-x", the row's "order-003"`, func(w *world) {
			w.broker[testTopics.OrderEvents][6].key = "order-x"
		}},
	}
}

func inboxCases() []violation {
	return []violation{
		{"an inbox missing an event", "inbox", nil, "reporting's inbox lacks alpes.payments.v1.PaymentProcessed event order-006-e2", func(w *world) { delete(w.snap.inbox["reporting"], "order-006-e2") }},
		{"an inbox holding an event under another topic", "inbox", nil, "reporting's inbox holds order-006-e2 under topic elsewhere", func(w *world) {
			w.snap.inbox["reporting"]["order-006-e2"] = "elsewhere"
		}},
		{"an inbox holding an event of no outbox", "inbox", nil, "payments's inbox holds e-unknown, which no outbox of its topics has", func(w *world) {
			w.snap.inbox["payments"]["e-unknown"] = testTopics.OrderEvents
		}},
		{"a parked message", "parked", nil, "payments parked 1 messages", func(w *world) { w.snap.parked["payments"] = 1 }},
		{"fewer parked messages than expected", "parked", nil, "1 messages parked in all, want 2", func(w *world) {
			w.snap.parked["payments"], w.cfg.ExpectParked = 1, 2
		}},
		{"as many parked messages as expected", "", nil, "", func(w *world) {
			w.snap.parked["payments"], w.cfg.ExpectParked = 2, 2
		}},
	}
}
