package oracle

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/alpes/alpes/internal/eventcatalog"
	"github.com/alpes/alpes/services/client"
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
// every order placed and paid, even ones confirmed and odd ones rejected.
type world struct {
	ops    []client.Op
	snap   *snapshot
	broker map[string][]brokerMessage
	slots  []slotState
}

func newWorld(n int) *world {
	w := &world{
		snap: &snapshot{
			keys: map[string]string{}, requests: map[string]bool{}, views: map[string]string{},
			orders: map[string]string{}, payments: map[string]int{}, facts: map[string]string{},
			timeline: map[string][]timelineEntry{}, events: map[string]event{}, eventsByKey: map[string][]event{},
			inbox: map[string]map[string]string{"bff": {}, "orders": {}, "payments": {}, "reporting": {}}, parked: map[string]int{},
		},
		broker: map[string][]brokerMessage{},
		slots:  []slotState{{name: "alpes_relay_bff", caughtUp: true}},
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		id := fmt.Sprintf("order-%03d", i)
		key := fmt.Sprintf("key-%03d", i)
		status := []string{"confirmed", "rejected"}[i%2]
		w.ops = append(w.ops, client.Op{Key: key, OrderID: id, Fate: client.FateOK, Outcome: status})
		s := w.snap
		s.keys[key], s.requests[id], s.views[id], s.orders[id], s.payments[id], s.facts[id] = id, true, status, status, 1, status
		settle := typeOrderConfirmed
		if status == "rejected" {
			settle = typeOrderRejected
		}
		for j, e := range []event{
			{topic: testTopics.OrderCommands, typ: typePlaceOrder, source: "bff"},
			{topic: testTopics.OrderEvents, typ: typeOrderPlaced, source: "orders"},
			{topic: testTopics.PaymentEvents, typ: typePaymentProcessed, source: "payments"},
			{topic: testTopics.OrderEvents, typ: settle, source: "orders"},
		} {
			e.id, e.key, e.created = fmt.Sprintf("%s-e%d", id, j), id, t0.Add(time.Duration(i*10+j)*time.Millisecond)
			w.addEvent(e)
			if j > 0 {
				s.timeline[id] = append(s.timeline[id], timelineEntry{eventID: e.id, typ: e.typ, occurred: e.created})
			}
		}
	}
	return w
}

func (w *world) addEvent(e event) {
	s := w.snap
	s.events[e.id] = e
	s.eventsByKey[e.key] = append(s.eventsByKey[e.key], e)
	for consumer, topics := range consumedTopics(testTopics) {
		for _, t := range topics {
			if t == e.topic {
				s.inbox[consumer][e.id] = e.topic
			}
		}
	}
	w.broker[e.topic] = append(w.broker[e.topic], brokerMessage{eventID: e.id, key: e.key})
}

func (w *world) verdict() Verdict {
	var v Verdict
	v.Settled = true
	judge(&v, Config{Ops: w.ops, Topics: testTopics}, w.snap, w.broker, w.slots)
	return v
}

func TestACleanSystemPasses(t *testing.T) {
	v := newWorld(10).verdict()
	if !v.OK() {
		t.Fatalf("a clean system fails:\n%s", v)
	}
	if v.Orders != 10 || v.Ops.OK != 10 || v.Events[testTopics.OrderEvents] != 20 {
		t.Errorf("verdict counts: %+v", v)
	}
	if !strings.Contains(v.String(), "CLEAN") {
		t.Errorf("String() = %s", v)
	}
}

// TestEachViolationIsFound breaks a clean system in one way per case and
// checks that the check responsible, and only a check, finds it.
func TestEachViolationIsFound(t *testing.T) {
	cases := []struct {
		name   string
		check  string // the check that must find it; "" for none
		also   string // another check that may find it too
		break_ func(w *world)
	}{
		{"a failed operation was written", "ledger", "effects", func(w *world) { w.ops[0].Fate = client.FateFailed }},
		{"an ok operation has no record", "ledger", "", func(w *world) { delete(w.snap.keys, "key-001") }},
		{"the client was told another order", "ledger", "", func(w *world) { w.ops[2].OrderID = "order-999"; w.ops[2].Fate = client.FateUnknown }},
		{"an order without an operation", "effects", "", func(w *world) { w.snap.orders["order-stray"] = "confirmed" }},
		{"a payment missing", "effects", "", func(w *world) { delete(w.snap.payments, "order-003") }},
		{"a payment twice", "effects", "", func(w *world) { w.snap.payments["order-003"] = 2 }},
		{"an order left pending", "terminal", "", func(w *world) { w.snap.orders["order-004"] = "placed" }},
		{"the view disagrees", "terminal", "", func(w *world) { w.snap.views["order-004"] = "rejected" }},
		{"an event lost on the broker", "broker", "order", func(w *world) {
			w.broker[testTopics.PaymentEvents] = w.broker[testTopics.PaymentEvents][1:]
		}},
		{"an event twice on the broker", "broker", "", func(w *world) {
			m := w.broker[testTopics.OrderCommands]
			w.broker[testTopics.OrderCommands] = append(m, m[3])
		}},
		{"a replayed copy is fine", "", "", func(w *world) {
			m := w.broker[testTopics.OrderCommands][3]
			m.replayed = true
			w.broker[testTopics.OrderCommands] = append(w.broker[testTopics.OrderCommands], m)
		}},
		{"an order's events out of order on the broker", "order", "", func(w *world) {
			m := w.broker[testTopics.OrderEvents]
			m[0], m[1] = m[1], m[0] // order-000's OrderPlaced after its OrderConfirmed
		}},
		{"a timeline out of causal order", "order", "", func(w *world) {
			tl := w.snap.timeline["order-005"]
			tl[0], tl[2] = tl[2], tl[0]
		}},
		{"an inbox missing an event", "inbox", "", func(w *world) { delete(w.snap.inbox["reporting"], "order-006-e2") }},
		{"a parked message", "parked", "", func(w *world) { w.snap.parked["payments"] = 1 }},
		{"a slot behind", "slots", "", func(w *world) { w.slots[0].caughtUp = false }},
		{"an unknown operation written once is expected", "", "", func(w *world) {
			w.ops[7].Fate, w.ops[7].OrderID = client.FateUnknown, ""
		}},
		{"an unknown operation not written is fine", "", "", func(w *world) {
			w.ops = append(w.ops, client.Op{Key: "key-never", Fate: client.FateUnknown})
		}},
		{"a failed operation not written is fine", "", "", func(w *world) {
			w.ops = append(w.ops, client.Op{Key: "key-refused", Fate: client.FateFailed, Status: 503})
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(10)
			c.break_(w)
			v := w.verdict()
			for _, r := range v.Checks {
				if (r.Name == c.check && r.Failed == 0) || (r.Name != c.check && r.Name != c.also && r.Failed > 0) {
					t.Errorf("check %s: %d violations %v", r.Name, r.Failed, r.Violations)
				}
			}
			if v.OK() != (c.check == "") {
				t.Errorf("OK() = %v:\n%s", v.OK(), v)
			}
		})
	}
}
