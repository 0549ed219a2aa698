package oracle

import (
	"bytes"
	"fmt"
	"iter"
	"maps"
	"net/http"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/alpes/alpes/lab/loadgen"
	ordersv1 "github.com/alpes/alpes/proto/alpes/orders/v1"
	paymentsv1 "github.com/alpes/alpes/proto/alpes/payments/v1"
)

func typeName(m proto.Message) string { return string(m.ProtoReflect().Descriptor().FullName()) }

var (
	typePlaceOrder       = typeName(&ordersv1.PlaceOrder{})
	typeOrderPlaced      = typeName(&ordersv1.OrderPlaced{})
	typeOrderConfirmed   = typeName(&ordersv1.OrderConfirmed{})
	typeOrderRejected    = typeName(&ordersv1.OrderRejected{})
	typePaymentProcessed = typeName(&paymentsv1.PaymentProcessed{})
)

// causalRank orders an order's events as they must happen: the command,
// the placement, the payment, the settlement.
var causalRank = map[string]int{
	typePlaceOrder: 0, typeOrderPlaced: 1, typePaymentProcessed: 2, typeOrderConfirmed: 3, typeOrderRejected: 3,
}

func terminal(status string) bool { return status == "confirmed" || status == "rejected" }

// judge runs every check on what was read and fills v; cfg.Topics must be
// resolved (Check does so).
func judge(v *Verdict, cfg Config, s *snapshot, onBroker map[string][]brokerMessage, slots []slotState) {
	expected := checkLedger(v, cfg.Ops, s)
	v.Orders = len(expected)
	checkLoad(v, cfg.MinOrders)
	checkEffects(v, s, expected)
	checkOutcomes(v, cfg.Ops, s)
	checkContent(v, s, expected)
	checkOrder(v, s, onBroker, expected)
	checkTimeline(v, cfg.Topics, s, expected)
	checkInboxes(v, consumedTopics(cfg.Topics), s, cfg.ExpectParked)
	checkBroker(v, s, onBroker)
	checkSlots(v, slots)
}

// checkLoad refuses a run that placed fewer orders than minOrders, and
// always one that placed none: it proves nothing.
func checkLoad(v *Verdict, minOrders int) {
	minOrders = max(minOrders, 1)
	c := CheckResult{Name: "load", Rule: fmt.Sprintf("the ledger's operations placed at least %d orders: a run with none proves nothing", minOrders), Checked: 1}
	if v.Orders < minOrders {
		c.fail("%d orders, fewer than the %d required: the run proves nothing", v.Orders, minOrders)
	}
	v.Checks = append(v.Checks, c)
}

// checkLedger matches the ledger with the bff's idempotency records and
// returns the orders that must exist, those of ok operations and of unknown
// ones that were written, each with what its operation asked to place (nil
// when the operation did not record it). It also checks that every record
// belongs to an operation and would replay the answer that names its order.
func checkLedger(v *Verdict, ops []loadgen.Op, s *snapshot) map[string]*loadgen.Order {
	c := CheckResult{Name: "ledger", Rule: "an ok operation's key names its order; a failed one's names none; an unknown one's at most one; every idempotency record is an operation's and replays its order"}
	expected := map[string]*loadgen.Order{}
	seen := map[string]bool{}
	for _, op := range ops {
		c.Checked++
		if seen[op.Key] {
			c.fail("key %s used by two operations", op.Key)
		}
		seen[op.Key] = true
		for _, id := range ledgerEntry(v, &c, op, s) {
			expected[id] = op.Order
		}
	}
	for _, key := range slices.Sorted(maps.Keys(s.keys)) {
		rec := s.keys[key]
		switch {
		case !seen[key]:
			c.fail("idempotency record %s (order %s) belongs to no operation", key, rec.orderID)
		case rec.status != http.StatusAccepted || rec.answered != rec.orderID:
			c.fail("idempotency record %s of order %s would replay status %d naming order %q", key, rec.orderID, rec.status, rec.answered)
		}
	}
	v.Checks = append(v.Checks, c)
	return expected
}

// ledgerEntry checks one operation against its idempotency record, counts
// it in v, and returns the orders it makes expected.
func ledgerEntry(v *Verdict, c *CheckResult, op loadgen.Op, s *snapshot) []string {
	rec, written := s.keys[op.Key]
	id := rec.orderID
	switch op.Fate {
	case loadgen.FateOK:
		v.Ops.OK++
		switch {
		case !written:
			c.fail("ok operation %s (order %s) has no idempotency record", op.Key, op.OrderID)
			return []string{op.OrderID}
		case id != op.OrderID:
			c.fail("ok operation %s: the client was told order %s, the bff recorded %s", op.Key, op.OrderID, id)
			return []string{op.OrderID, id}
		}
		return []string{id}
	case loadgen.FateFailed:
		v.Ops.Failed++
		if written {
			c.fail("failed operation %s (last status %d) created order %s", op.Key, op.Status, id)
		}
		return nil
	default:
		v.Ops.Unknown++
		if !written {
			return nil
		}
		if op.OrderID != "" && id != op.OrderID {
			c.fail("unknown operation %s: told order %s, the bff recorded %s", op.Key, op.OrderID, id)
		}
		v.UnknownWritten++
		return []string{id}
	}
}

// checkEffects checks that every expected order has exactly one effect in
// each consumer, settled alike everywhere, and that no other order has any.
func checkEffects(v *Verdict, s *snapshot, expected map[string]*loadgen.Order) {
	once := CheckResult{Name: "effects", Rule: "every expected order has exactly one effect in each database, and nothing else does"}
	term := CheckResult{Name: "terminal", Rule: "every expected order is confirmed or rejected, and alike in orders, the bff's view and reporting"}
	for _, id := range slices.Sorted(maps.Keys(expected)) {
		once.Checked++
		term.Checked++
		if problem := effectsProblem(s, id); problem != "" {
			once.fail("order %s: %s", id, problem)
		}
		st := s.orders[id].status
		switch {
		case !terminal(st):
			term.fail("order %s is %q in orders", id, st)
		case s.views[id].status != st || s.facts[id].status != st:
			term.fail("order %s is %s in orders, %q in the bff's view, %q in reporting", id, st, s.views[id].status, s.facts[id].status)
		}
	}
	stray := strays(s)
	for _, id := range slices.Sorted(maps.Keys(stray)) {
		if _, ok := expected[id]; !ok {
			once.fail("order %s has %s but no ok or unknown operation", id, stray[id])
		}
	}
	v.Checks = append(v.Checks, once, term)
}

// effectsProblem says what is missing or doubled of order id's effects; ""
// when each is there once.
func effectsProblem(s *snapshot, id string) string {
	count := func(typ string) int { return countEvents(s, id, typ) }
	placed, paid, settled := count(typeOrderPlaced), count(typePaymentProcessed), count(typeOrderConfirmed)+count(typeOrderRejected)
	_, requested := s.requests[id]
	_, ordered := s.orders[id]
	_, reported := s.facts[id]
	_, viewed := s.views[id]
	switch {
	case !requested:
		return "no request in the bff"
	case count(typePlaceOrder) != 1:
		return fmt.Sprintf("%d PlaceOrder commands in the bff's outbox", count(typePlaceOrder))
	case !ordered:
		return "no order in orders"
	case placed > 1 || settled != 1:
		return fmt.Sprintf("%d OrderPlaced and %d settling events in orders' outbox", placed, settled)
	case len(s.payments[id]) != placed || paid != placed:
		return fmt.Sprintf("placed %d times, %d payments, %d PaymentProcessed", placed, len(s.payments[id]), paid)
	case !reported:
		return "no facts in reporting"
	case !viewed:
		return "no view in the bff"
	}
	return ""
}

// countEvents counts order id's outbox events of type typ.
func countEvents(s *snapshot, id, typ string) int {
	n := 0
	for _, e := range s.eventsByKey[id] {
		if e.typ == typ {
			n++
		}
	}
	return n
}

// strays names, by order id, one effect each order has anywhere (a request,
// an order, a payment, facts, a view, a timeline entry): the orders whose
// existence some operation must explain.
func strays(s *snapshot) map[string]string {
	out := map[string]string{}
	note := func(what string, ids iter.Seq[string]) {
		for id := range ids {
			out[id] = what
		}
	}
	note("a request in the bff", maps.Keys(s.requests))
	note("a view in the bff", maps.Keys(s.views))
	note("an order in orders", maps.Keys(s.orders))
	note("a payment", maps.Keys(s.payments))
	note("facts in reporting", maps.Keys(s.facts))
	note("a timeline in reporting", maps.Keys(s.timeline))
	return out
}

// checkOrder checks per-order order on the broker: on each topic an order's
// messages come in the order of its outbox rows.
func checkOrder(v *Verdict, s *snapshot, onBroker map[string][]brokerMessage, expected map[string]*loadgen.Order) {
	c := CheckResult{Name: "order", Rule: "per order, events on the broker follow the outbox order"}
	// First appearance of each event id per (topic, key) on the broker.
	type tk struct{ topic, key string }
	got := map[tk][]string{}
	seen := map[string]bool{}
	for topic, msgs := range onBroker {
		for _, m := range msgs {
			if m.replayed || seen[m.eventID] {
				continue
			}
			seen[m.eventID] = true
			got[tk{topic, m.key}] = append(got[tk{topic, m.key}], m.eventID)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(expected)) {
		c.Checked++
		want := map[string][]string{}
		for _, e := range s.eventsByKey[id] {
			want[e.topic] = append(want[e.topic], e.id)
		}
		for _, topic := range slices.Sorted(maps.Keys(want)) {
			if g := got[tk{topic, id}]; !slices.Equal(g, want[topic]) {
				c.fail("order %s on %s: broker order %v, outbox order %v", id, topic, g, want[topic])
			}
		}
	}
	v.Checks = append(v.Checks, c)
}

// checkInboxes checks that each consumer's inbox holds exactly the outbox
// events of its topics (consumed, by consumer), and that nothing was parked.
func checkInboxes(v *Verdict, consumed map[string][]string, s *snapshot, expectParked int) {
	c := CheckResult{Name: "inbox", Rule: "each consumer's inbox holds every outbox event of its topics, and nothing else"}
	byTopic := map[string][]string{}
	for _, e := range s.events {
		byTopic[e.topic] = append(byTopic[e.topic], e.id)
	}
	for _, consumer := range slices.Sorted(maps.Keys(consumed)) {
		inbox := s.inbox[consumer]
		want := map[string]bool{}
		for _, topic := range consumed[consumer] {
			for _, id := range byTopic[topic] {
				want[id] = true
				c.Checked++
				if got, ok := inbox[id]; !ok {
					c.fail("%s's inbox lacks %s event %s", consumer, s.events[id].typ, id)
				} else if got != topic {
					c.fail("%s's inbox holds %s under topic %s, want %s", consumer, id, got, topic)
				}
			}
		}
		for id := range inbox {
			if !want[id] {
				c.fail("%s's inbox holds %s, which no outbox of its topics has", consumer, id)
			}
		}
	}
	parked := CheckResult{Name: "parked", Rule: "no message is parked or dead-lettered, unless expected"}
	total := 0
	for _, service := range services {
		parked.Checked++
		total += s.parked[service]
		if s.parked[service] > 0 && expectParked == 0 {
			parked.fail("%s parked %d messages", service, s.parked[service])
		}
	}
	if expectParked > 0 && total != expectParked {
		parked.fail("%d messages parked in all, want %d", total, expectParked)
	}
	v.Checks = append(v.Checks, c, parked)
}

// checkBroker compares every topic with the outboxes: each event once, and
// each message as its outbox row says, byte for byte.
func checkBroker(v *Verdict, s *snapshot, onBroker map[string][]brokerMessage) {
	c := CheckResult{Name: "broker", Rule: "the broker holds each outbox event exactly once, with the row's key, type and payload: none missing, none twice, none unknown, none altered"}
	for _, id := range s.duplicateIDs {
		c.fail("event id %s is in two outboxes", id)
	}
	v.Events, v.BrokerMessages = map[string]int{}, map[string]int{}
	for _, e := range s.events {
		v.Events[e.topic]++
	}
	seen := map[string]int{}
	for _, topic := range slices.Sorted(maps.Keys(onBroker)) {
		for _, m := range onBroker[topic] {
			v.BrokerMessages[topic]++
			if m.replayed {
				continue // a deliberate replay publishes again
			}
			seen[m.eventID]++
			e, ok := s.events[m.eventID]
			switch {
			case !ok:
				c.fail("%s holds event %s (key %s), which no outbox has", topic, m.eventID, m.key)
			case e.topic != topic:
				c.fail("event %s is on %s, its outbox row says %s", m.eventID, topic, e.topic)
			case seen[m.eventID] == 2:
				c.fail("%s holds %s event %s more than once", topic, e.typ, m.eventID)
			default:
				if d := messageDiff(m, e); d != "" {
					c.fail("%s event %s (order %s) on %s differs from its outbox row: %s", e.typ, e.id, e.key, topic, d)
				}
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(s.events)) {
		c.Checked++
		if seen[id] == 0 {
			e := s.events[id]
			c.fail("%s event %s (key %s) from %s's outbox never reached %s", e.typ, id, e.key, e.source, e.topic)
		}
	}
	v.Checks = append(v.Checks, c)
}

// messageDiff says how a message differs from its outbox row (key, type,
// payload); "" when it does not.
func messageDiff(m brokerMessage, e event) string {
	var d []string
	if m.key != e.key {
		d = append(d, fmt.Sprintf("key %q, the row's %q", m.key, e.key))
	}
	if m.typ != e.typ {
		d = append(d, fmt.Sprintf("type %q, the row's %q", m.typ, e.typ))
	}
	if !bytes.Equal(m.payload, e.payload) {
		d = append(d, fmt.Sprintf("payload of %d bytes, the row's %d, first different at byte %d", len(m.payload), len(e.payload), firstDifference(m.payload, e.payload)))
	}
	return strings.Join(d, "; ")
}

// firstDifference is the index of the first byte where a and b differ (the
// shorter one's length when one is a prefix of the other).
func firstDifference(a, b []byte) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// checkSlots checks that every relay slot caught up with the WAL.
func checkSlots(v *Verdict, slots []slotState) {
	c := CheckResult{Name: "slots", Rule: "every relay slot's confirmed position reached the WAL's end as it was when the system went still"}
	for _, s := range slots {
		c.Checked++
		if !s.caughtUp {
			c.fail("slot %s (%s) confirmed %s, behind %s", s.name, s.database, s.confirmed, s.target)
		}
	}
	v.Checks = append(v.Checks, c)
}
