package inbox_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/apache/pulsar-client-go/pulsar"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/alpes/alpes/broker/brokertest"
	"github.com/alpes/alpes/outbox/eventmeta"
	"github.com/alpes/alpes/outbox/inbox"
	ordersv1 "github.com/alpes/alpes/proto/alpes/orders/v1"
	paymentsv1 "github.com/alpes/alpes/proto/alpes/payments/v1"
)

// failing handles OrderPlaced like recordEffect, but fails the event ids in
// fail as many times as their counter says (negative: always), counting
// every call.
type failing struct {
	fail  map[string]int
	calls map[string]*atomic.Int64
}

func newFailing(fail map[string]int) *failing {
	f := &failing{fail: fail, calls: map[string]*atomic.Int64{}}
	for id := range fail {
		f.calls[id] = new(atomic.Int64)
	}
	return f
}

func (f *failing) handle(ctx context.Context, tx inbox.Tx, msg inbox.Message, body *ordersv1.OrderPlaced) error {
	// Write first, so a failure must roll the write back.
	if err := recordEffect(ctx, tx, msg, body); err != nil {
		return err
	}
	if calls, ok := f.calls[msg.EventID]; ok {
		n := calls.Add(1)
		if limit := f.fail[msg.EventID]; limit < 0 || n <= int64(limit) {
			return fmt.Errorf("refusing %s, call %d", msg.EventID, n)
		}
	}
	return nil
}

func (f *failing) registry() *inbox.Registry {
	reg := inbox.NewRegistry()
	inbox.Handle(reg, f.handle)
	return reg
}

func TestHandlerFailingThenSucceedingIsAppliedOnce(t *testing.T) {
	e := newEnv(t)
	evs := sequence(3, 5)
	flaky := evs[7]
	f := newFailing(map[string]int{flaky.id: 2})
	e.publisher(e.ordersTopic).publish(evs...)
	c := e.start(e.config(f.registry()))

	e.waitEffects(len(evs))
	e.waitDrained(e.ordersTopic)
	e.assertEffects(evs)
	if got := f.calls[flaky.id].Load(); got != 3 {
		t.Errorf("flaky handler called %d times, want 3", got)
	}
	if st := c.Stats(); st.Applied != int64(len(evs)) || st.Retries != 2 || st.DeadLettered != 0 {
		t.Errorf("stats %+v: want %d applied after 2 retries, nothing dead-lettered", st, len(evs))
	}
}

func TestPoisonMessageIsDeadLetteredAndLaterMessagesContinue(t *testing.T) {
	e := newEnv(t)
	evs := sequence(3, 6)
	poison := evs[4] // order-1, seq 1: its key has later events
	f := newFailing(map[string]int{poison.id: -1})
	dlq := e.subscribe(inbox.DeadLetterTopic(e.ordersTopic, service))
	e.publisher(e.ordersTopic).publish(evs...)
	cfg := e.config(f.registry())
	cfg.MaxAttempts = 3
	c := e.start(cfg)

	var rest []event
	for _, ev := range evs {
		if ev.id != poison.id {
			rest = append(rest, ev)
		}
	}
	e.waitEffects(len(rest))
	e.waitDrained(e.ordersTopic)
	e.assertEffects(rest)
	if got := f.calls[poison.id].Load(); got != 3 {
		t.Errorf("poison handler called %d times, want MaxAttempts = 3", got)
	}

	msg := dlq.receive(t)
	props := msg.Properties()
	if props[eventmeta.EventID] != poison.id || props[eventmeta.Type] != poison.typ || msg.Key() != poison.key ||
		string(msg.Payload()) != string(poison.payload) {
		t.Errorf("dead letter %v key %q: want the poison event with its key, properties and payload", props, msg.Key())
	}
	if reason := props[inbox.DLQReason]; !strings.Contains(reason, "3 times") || !strings.Contains(reason, "refusing") {
		t.Errorf("%s = %q: want the attempts and the handler's error", inbox.DLQReason, reason)
	}
	if n := e.count(`SELECT count(*) FROM inbox WHERE event_id = $1`, poison.id); n != 1 {
		t.Errorf("poison event in the inbox %d times, want 1 (a redelivery must be a no-op)", n)
	}
	if n := e.count(`SELECT count(*) FROM parked_messages WHERE event_id = $1 AND reason LIKE 'dead-lettered%'`, poison.id); n != 1 {
		t.Errorf("poison event parked as dead-lettered %d times, want 1", n)
	}
	if st := c.Stats(); st.DeadLettered != 1 || st.Retries != 2 || st.Applied != int64(len(rest)) {
		t.Errorf("stats %+v: want 1 dead-lettered after 2 retries, %d applied", st, len(rest))
	}

	// Delivered again, the dead letter is a duplicate: no handler, no second dead letter.
	e.publisher(e.ordersTopic).publish(poison)
	e.waitFor("the re-sent poison message seen as a duplicate", func() bool { return c.Stats().Duplicates == 1 })
	if st := c.Stats(); st.DeadLettered != 1 || f.calls[poison.id].Load() != 3 {
		t.Errorf("stats %+v after the re-send, handler calls %d: want it absorbed by the inbox", st, f.calls[poison.id].Load())
	}
}

func TestMessagesThatCannotBeAppliedAreParked(t *testing.T) {
	e := newEnv(t)

	good := placed("order-1", 0)
	unknownType := placed("order-2", 0)
	unknownType.typ = "alpes.orders.v1.OrderTeleported"
	unhandled := paymentEvent("order-3") // a real type nobody registered
	garbage := placed("order-4", 0)
	garbage.payload = []byte{0x0a, 0xff, 0xff} // a length running past the end
	wrongVersion := placed("order-5", 0)
	wrongVersion.props = map[string]string{eventmeta.SchemaVersion: "2"}
	refused := placed("order-6", 0)
	newer := placed("order-7", 0) // from a newer producer: a field this binary does not know
	newer.payload = protowire.AppendString(protowire.AppendTag(newer.payload, 99, protowire.BytesType), "gift wrap")
	noType := placed("order-8", 0)
	noType.props = map[string]string{eventmeta.Type: ""}
	last := placed("order-1", 1)

	reg := inbox.NewRegistry()
	inbox.Handle(reg, func(ctx context.Context, tx inbox.Tx, msg inbox.Message, body *ordersv1.OrderPlaced) error {
		if err := recordEffect(ctx, tx, msg, body); err != nil {
			return err
		}
		if msg.EventID == refused.id {
			return fmt.Errorf("%w: order %s cannot be placed", inbox.ErrPark, body.GetOrderId())
		}
		return nil
	})
	parkedReasons := map[string]string{
		unknownType.id:  "unknown type alpes.orders.v1.OrderTeleported",
		unhandled.id:    "unknown type alpes.payments.v1.PaymentProcessed",
		garbage.id:      "decoding alpes.orders.v1.OrderPlaced",
		wrongVersion.id: `schema version "2" on a v1 topic`,
		refused.id:      "parked by handler: order order-6 cannot be placed",
		noType.id:       "no alpes-type property",
	}

	e.publisher(e.ordersTopic).publish(good, unknownType, unhandled, garbage, wrongVersion, refused, newer, noType, last)
	c := e.start(e.config(reg))
	e.waitDrained(e.ordersTopic)

	e.assertEffects([]event{good, newer, last})
	for id, want := range parkedReasons {
		var reason string
		var payload []byte
		var props map[string]string
		err := e.admin.QueryRow(context.Background(),
			`SELECT reason, payload, properties FROM parked_messages WHERE event_id = $1`, id).Scan(&reason, &payload, &props)
		if err != nil {
			t.Errorf("parked row of %s: %v", id, err)
			continue
		}
		if !strings.HasPrefix(reason, want) {
			t.Errorf("parked %s because %q, want %q", id, reason, want)
		}
		if props[eventmeta.EventID] != id || len(payload) == 0 {
			t.Errorf("parked %s with properties %v and %d payload bytes: want them as received", id, props, len(payload))
		}
	}
	if n := e.count(`SELECT count(*) FROM inbox`); n != 9 {
		t.Errorf("inbox holds %d rows, want all 9 messages", n)
	}
	if st := c.Stats(); st.Parked != int64(len(parkedReasons)) || st.Applied != 3 || st.Retries != 0 {
		t.Errorf("stats %+v: want %d parked, 3 applied, no retries", st, len(parkedReasons))
	}
}

func TestMessageWithoutEventIDIsDeadLettered(t *testing.T) {
	e := newEnv(t)
	bad := placed("order-1", 0)
	bad.props = map[string]string{eventmeta.EventID: "not-a-uuid"}
	good := placed("order-1", 1)
	dlq := e.subscribe(inbox.DeadLetterTopic(e.ordersTopic, service))
	e.publisher(e.ordersTopic).publish(bad, good)
	c := e.start(e.config(effectRegistry()))

	e.waitEffects(1)
	e.waitDrained(e.ordersTopic)
	e.assertEffects([]event{good})
	if msg := dlq.receive(t); !strings.Contains(msg.Properties()[inbox.DLQReason], "not a uuid") {
		t.Errorf("dead letter properties %v: want the reason", msg.Properties())
	}
	if st := c.Stats(); st.DeadLettered != 1 {
		t.Errorf("stats %+v: want 1 dead-lettered", st)
	}
}

func TestSkippedTypesAreRecordedWithoutEffect(t *testing.T) {
	e := newEnv(t)
	payment := paymentEvent("order-1")
	ev := placed("order-1", 0)
	e.publisher(e.ordersTopic).publish(payment, ev)
	reg := effectRegistry()
	inbox.Skip[*paymentsv1.PaymentProcessed](reg)
	c := e.start(e.config(reg))

	e.waitDrained(e.ordersTopic)
	e.assertEffects([]event{ev})
	if st := c.Stats(); st.Skipped != 1 || st.Parked != 0 {
		t.Errorf("stats %+v: want 1 skipped, none parked", st)
	}
	if n := e.count(`SELECT count(*) FROM inbox WHERE event_id = $1`, payment.id); n != 1 {
		t.Errorf("skipped event in the inbox %d times, want 1", n)
	}
}

// subscription reads a topic from its earliest message.
type subscription struct{ c pulsar.Consumer }

func (e *env) subscribe(topic string) *subscription {
	e.t.Helper()
	c, err := e.client().Subscribe(pulsar.ConsumerOptions{
		Topic:                       topic,
		SubscriptionName:            "test-" + brokertest.UniqueName(e.t),
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(c.Close)
	return &subscription{c: c}
}

func (s *subscription) receive(t *testing.T) pulsar.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	msg, err := s.c.Receive(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("nothing on the topic after %s", waitTimeout)
	}
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func TestPanickingHandlerIsDeadLetteredNotACrash(t *testing.T) {
	e := newEnv(t)
	bomb, after := placed("order-1", 0), placed("order-1", 1)
	reg := inbox.NewRegistry()
	inbox.Handle(reg, func(ctx context.Context, tx inbox.Tx, msg inbox.Message, body *ordersv1.OrderPlaced) error {
		if msg.EventID == bomb.id {
			panic("nil map somewhere")
		}
		return recordEffect(ctx, tx, msg, body)
	})
	dlq := e.subscribe(inbox.DeadLetterTopic(e.ordersTopic, service))
	e.publisher(e.ordersTopic).publish(bomb, after)
	cfg := e.config(reg)
	cfg.MaxAttempts = 2
	c := e.start(cfg)

	e.waitEffects(1)
	e.waitDrained(e.ordersTopic)
	e.assertEffects([]event{after})
	if reason := dlq.receive(t).Properties()[inbox.DLQReason]; !strings.Contains(reason, "panicked: nil map somewhere") {
		t.Errorf("%s = %q: want the panic", inbox.DLQReason, reason)
	}
	if st := c.Stats(); st.DeadLettered != 1 || st.Retries != 1 {
		t.Errorf("stats %+v: want 1 retry, then 1 dead letter", st)
	}
}

// A handler that returns nil over a transaction it left unusable, aborted
// by a statement whose error it dropped or busy with rows it never closed,
// makes every later statement fail and COMMIT roll back. Taken for the
// database's fault, the whole run would be retried forever, holding back
// every message behind it. The consumer sees it as that handler's failure:
// its message is retried alone, then dead-lettered, and the rest proceed.
func TestCarelessHandlerIsDeadLetteredNotRetriedForever(t *testing.T) {
	for _, tc := range []struct {
		name, reason string
		careless     func(ctx context.Context, tx inbox.Tx) error
	}{
		{"a failed statement's error dropped", "transaction aborted", func(ctx context.Context, tx inbox.Tx) error {
			_, _ = tx.Exec(ctx, `SELECT 1 / 0`)
			return nil
		}},
		{"rows never closed", "results still unread", func(ctx context.Context, tx inbox.Tx) error {
			_, err := tx.Query(ctx, `SELECT generate_series(1, 10000)`)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			careless, before, after := placed("order-1", 0), placed("order-2", 0), placed("order-1", 1)
			reg := inbox.NewRegistry()
			inbox.Handle(reg, func(ctx context.Context, tx inbox.Tx, msg inbox.Message, body *ordersv1.OrderPlaced) error {
				if msg.EventID == careless.id {
					return tc.careless(ctx, tx)
				}
				return recordEffect(ctx, tx, msg, body)
			})
			dlq := e.subscribe(inbox.DeadLetterTopic(e.ordersTopic, service))
			e.publisher(e.ordersTopic).publish(before, careless, after)
			cfg := e.config(reg)
			cfg.MaxAttempts = 2
			c := e.start(cfg)

			e.waitEffects(2)
			e.waitDrained(e.ordersTopic)
			e.assertEffects([]event{before, after})
			if reason := dlq.receive(t).Properties()[inbox.DLQReason]; !strings.Contains(reason, tc.reason) {
				t.Errorf("%s = %q: want %q in it", inbox.DLQReason, reason, tc.reason)
			}
			if st := c.Stats(); st.DeadLettered != 1 || st.Retries != 1 || st.DBRetries != 0 {
				t.Errorf("stats %+v: want 1 retry, then 1 dead letter, and no retry as a database fault", st)
			}
		})
	}
}

// A dead-letter topic nobody has subscribed to keeps nothing: a broker may
// delete what no subscription holds (Pulsar without retention does). So the
// consumer makes its dead-letter topic's subscription, under its own
// subscription name, before the first dead letter, and whoever looks later
// finds every dead letter there.
func TestDeadLettersWaitForSomeoneToReadThem(t *testing.T) {
	e := newEnv(t)
	poison := placed("order-1", 0)
	f := newFailing(map[string]int{poison.id: -1})
	e.publisher(e.ordersTopic).publish(poison)
	cfg := e.config(f.registry())
	cfg.MaxAttempts = 1
	c := e.start(cfg)
	e.waitFor("the poison message dead-lettered", func() bool { return c.Stats().DeadLettered == 1 })

	dlq := inbox.DeadLetterTopic(e.ordersTopic, service)
	if sub, ok := e.subscriptionStats(dlq); !ok || sub.MsgBacklog != 1 {
		t.Fatalf("the dead-letter topic's subscription %q: exists %v, backlog %d; want it holding the dead letter", service, ok, sub.MsgBacklog)
	}
	// Reading it later, from where the subscription stands, finds it.
	later, err := e.client().Subscribe(pulsar.ConsumerOptions{Topic: dlq, SubscriptionName: service,
		SubscriptionInitialPosition: pulsar.SubscriptionPositionLatest})
	if err != nil {
		t.Fatal(err)
	}
	defer later.Close()
	if msg := (&subscription{c: later}).receive(t); msg.Properties()[eventmeta.EventID] != poison.id {
		t.Errorf("the dead letter read later is %v", msg.Properties())
	}
}
