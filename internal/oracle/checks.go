package oracle

import (
	"maps"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/alpes/alpes/internal/eventcatalog"
	ordersv1 "github.com/alpes/alpes/proto/alpes/orders/v1"
	paymentsv1 "github.com/alpes/alpes/proto/alpes/payments/v1"
	"github.com/alpes/alpes/services/client"
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
	checkEffects(v, s, expected)
	checkOrder(v, cfg.Topics, s, onBroker, expected)
	checkInboxes(v, consumedTopics(cfg.Topics), s, cfg.ExpectParked)
	checkBroker(v, s, onBroker)
	checkSlots(v, slots)
}

// checkLedger matches the ledger with the bff's idempotency records and
// returns the orders that must exist: those of ok operations and of unknown
// ones that were written.
func checkLedger(v *Verdict, ops []client.Op, s *snapshot) map[string]bool {
	c := CheckResult{Name: "ledger", Rule: "an ok operation's key names its order; a failed one's names none; an unknown one's at most one"}
	expected := map[string]bool{}
	seen := map[string]bool{}
	for _, op := range ops {
		c.Checked++
		if seen[op.Key] {
			c.fail("key %s used by two operations", op.Key)
		}
		seen[op.Key] = true
		id, written := s.keys[op.Key]
		switch op.Fate {
		case client.FateOK:
			v.Ops.OK++
			switch {
			case !written:
				c.fail("ok operation %s (order %s) has no idempotency record", op.Key, op.OrderID)
			case id != op.OrderID:
				c.fail("ok operation %s: the client was told order %s, the bff recorded %s", op.Key, op.OrderID, id)
			}
			expected[op.OrderID] = true
			if written {
				expected[id] = true
			}
		case client.FateFailed:
			v.Ops.Failed++
			if written {
				c.fail("failed operation %s (last status %d) created order %s", op.Key, op.Status, id)
			}
		default:
			v.Ops.Unknown++
			if op.OrderID != "" && written && id != op.OrderID {
				c.fail("unknown operation %s: told order %s, the bff recorded %s", op.Key, op.OrderID, id)
			}
			if written {
				v.UnknownWritten++
				expected[id] = true
			}
		}
	}
	v.Checks = append(v.Checks, c)
	return expected
}

// checkEffects checks that every expected order has exactly one effect in
// each consumer, settled alike everywhere, and that no other order exists.
func checkEffects(v *Verdict, s *snapshot, expected map[string]bool) {
	once := CheckResult{Name: "effects", Rule: "every expected order has exactly one effect in each database, and nothing else does"}
	term := CheckResult{Name: "terminal", Rule: "every expected order is confirmed or rejected, and alike in orders, the bff's view and reporting"}
	for _, id := range slices.Sorted(maps.Keys(expected)) {
		once.Checked++
		term.Checked++
		count := func(typ string) int {
			n := 0
			for _, e := range s.eventsByKey[id] {
				if e.typ == typ {
					n++
				}
			}
			return n
		}
		placed, paid, settled := count(typeOrderPlaced), count(typePaymentProcessed), count(typeOrderConfirmed)+count(typeOrderRejected)
		switch {
		case !s.requests[id]:
			once.fail("order %s: no request in the bff", id)
		case count(typePlaceOrder) != 1:
			once.fail("order %s: %d PlaceOrder commands in the bff's outbox", id, count(typePlaceOrder))
		case s.orders[id] == "":
			once.fail("order %s: no order in orders", id)
		case placed > 1 || settled != 1:
			once.fail("order %s: %d OrderPlaced and %d settling events in orders' outbox", id, placed, settled)
		case s.payments[id] != placed || paid != placed:
			once.fail("order %s: placed %d times, %d payments, %d PaymentProcessed", id, placed, s.payments[id], paid)
		case s.facts[id] == "":
			once.fail("order %s: no facts in reporting", id)
		case s.views[id] == "":
			once.fail("order %s: no view in the bff", id)
		}
		st := s.orders[id]
		switch {
		case !terminal(st):
			term.fail("order %s is %q in orders", id, st)
		case s.views[id] != st || s.facts[id] != st:
			term.fail("order %s is %s in orders, %q in the bff's view, %q in reporting", id, st, s.views[id], s.facts[id])
		}
	}
	// Effects without an operation that asked for them (a failed one's, or
	// one nobody made).
	stray := map[string]string{}
	for id := range s.requests {
		stray[id] = "a request in the bff"
	}
	for id := range s.orders {
		stray[id] = "an order in orders"
	}
	for id := range s.payments {
		stray[id] = "a payment"
	}
	for id := range s.facts {
		stray[id] = "facts in reporting"
	}
	for _, id := range slices.Sorted(maps.Keys(stray)) {
		if !expected[id] {
			once.fail("order %s has %s but no ok or unknown operation", id, stray[id])
		}
	}
	v.Checks = append(v.Checks, once, term)
}

// checkOrder checks per-order order: on each topic an order's messages come
// in the order of its outbox rows, and reporting's timeline lists its events
// in causal order with one entry per event.
func checkOrder(v *Verdict, topics eventcatalog.Topics, s *snapshot, onBroker map[string][]brokerMessage, expected map[string]bool) {
	c := CheckResult{Name: "order", Rule: "per order, events on the broker follow the outbox order, and the timeline is complete and causal"}
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
		var mine []event
		for _, e := range s.eventsByKey[id] {
			want[e.topic] = append(want[e.topic], e.id)
			if e.topic == topics.OrderEvents || e.topic == topics.PaymentEvents {
				mine = append(mine, e)
			}
		}
		for topic, ids := range want {
			if g := got[tk{topic, id}]; !slices.Equal(g, ids) {
				c.fail("order %s on %s: broker order %v, outbox order %v", id, topic, g, ids)
			}
		}
		tl := s.timeline[id]
		if len(tl) != len(mine) {
			c.fail("order %s: %d timeline entries for %d events", id, len(tl), len(mine))
			continue
		}
		for i := 1; i < len(tl); i++ {
			if causalRank[tl[i].typ] < causalRank[tl[i-1].typ] {
				c.fail("order %s: timeline has %s after %s", id, tl[i].typ, tl[i-1].typ)
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

// checkBroker compares every topic with the outboxes: each event once.
func checkBroker(v *Verdict, s *snapshot, onBroker map[string][]brokerMessage) {
	c := CheckResult{Name: "broker", Rule: "the broker holds each outbox event exactly once: none missing, none twice, none unknown"}
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

// checkSlots checks that every relay slot caught up with the WAL.
func checkSlots(v *Verdict, slots []slotState) {
	c := CheckResult{Name: "slots", Rule: "every relay slot's confirmed position reached the WAL's end while the system was quiet"}
	for _, s := range slots {
		c.Checked++
		if !s.caughtUp {
			c.fail("slot %s (%s) confirmed %s, behind %s", s.name, s.database, s.confirmed, s.target)
		}
	}
	v.Checks = append(v.Checks, c)
}
