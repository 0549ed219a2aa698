package reporting_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/alpes/alpes/outbox/eventmeta"
	moneyv1 "github.com/alpes/alpes/proto/alpes/money/v1"
	ordersv1 "github.com/alpes/alpes/proto/alpes/orders/v1"
	paymentsv1 "github.com/alpes/alpes/proto/alpes/payments/v1"
	"github.com/alpes/alpes/services/eventcatalog"
)

// event is one message as the relay would publish it, to the test tenant's
// topic of its stream.
type event struct {
	id, order  string
	stream     stream
	body       proto.Message
	commitTime time.Time
}

// stream says which of the tenant's topics an event goes to.
type stream int

const (
	orderEvents stream = iota
	paymentEvents
)

// topic is s's topic among topics.
func (s stream) topic(topics eventcatalog.Topics) string {
	if s == paymentEvents {
		return topics.PaymentEvents
	}
	return topics.OrderEvents
}

// story builds the events of one order, with times one second apart from
// its start, as orders and payments would state them.
type story struct {
	order    string
	start    time.Time
	total    int64
	payment  string
	customer string
}

func newStory(start time.Time, total int64) story {
	return story{order: uuid.NewString(), start: start.UTC().Truncate(time.Microsecond), total: total,
		payment: uuid.NewString(), customer: "customer-" + uuid.NewString()[:8]}
}

func (s story) at(step int) *timestamppb.Timestamp {
	return timestamppb.New(s.start.Add(time.Duration(step) * time.Second))
}

func (s story) eur() *moneyv1.Money { return &moneyv1.Money{AmountMinor: s.total, Currency: "EUR"} }

func (s story) ev(st stream, step int, body proto.Message) event {
	return event{id: uuid.NewString(), stream: st, order: s.order, body: body, commitTime: s.at(step).AsTime()}
}

func (s story) placed() event {
	return s.ev(orderEvents, 1, &ordersv1.OrderPlaced{
		OrderId: s.order, CustomerId: s.customer, Address: "Calle 1 # 2-3",
		Lines: []*ordersv1.PricedLine{
			{Sku: "SKU-1", Name: "Café", Quantity: 2, UnitPrice: &moneyv1.Money{AmountMinor: s.total / 4, Currency: "EUR"}},
			{Sku: "SKU-2", Name: "Arepa", Quantity: 1, UnitPrice: &moneyv1.Money{AmountMinor: s.total / 2, Currency: "EUR"}},
		},
		Total: s.eur(), RequestedAt: s.at(0), PlacedAt: s.at(1),
	})
}

func (s story) paid(status paymentsv1.PaymentStatus) event {
	reason := ""
	if status == paymentsv1.PaymentStatus_PAYMENT_STATUS_DECLINED {
		reason = "amount above the card's limit"
	}
	return s.ev(paymentEvents, 2, &paymentsv1.PaymentProcessed{
		PaymentId: s.payment, OrderId: s.order, Amount: s.eur(), Status: status,
		DeclineReason: reason, ProcessedAt: s.at(2),
	})
}

func (s story) confirmed() event {
	return s.ev(orderEvents, 3, &ordersv1.OrderConfirmed{
		OrderId: s.order, PaymentId: s.payment, Total: s.eur(), ConfirmedAt: s.at(3),
	})
}

func (s story) rejected(reason ordersv1.RejectionReason, step int) event {
	return s.ev(orderEvents, step, &ordersv1.OrderRejected{
		OrderId: s.order, Reason: reason, Detail: "see reason", RequestedAt: s.at(0), RejectedAt: s.at(step),
	})
}

// approvedFlow is the happy path of one order.
func (s story) approvedFlow() []event {
	return []event{s.placed(), s.paid(paymentsv1.PaymentStatus_PAYMENT_STATUS_APPROVED), s.confirmed()}
}

// declinedFlow is an order rejected after its payment was declined.
func (s story) declinedFlow() []event {
	return []event{s.placed(), s.paid(paymentsv1.PaymentStatus_PAYMENT_STATUS_DECLINED),
		s.rejected(ordersv1.RejectionReason_REJECTION_REASON_PAYMENT_DECLINED, 3)}
}

// publisher sends events with one producer per topic, as the relay does.
type publisher struct {
	t         testing.TB
	producers map[stream]pulsar.Producer
}

func (e *env) publisher() *publisher {
	e.t.Helper()
	c := e.client()
	p := &publisher{t: e.t, producers: map[stream]pulsar.Producer{}}
	for _, st := range []stream{orderEvents, paymentEvents} {
		prod, err := c.CreateProducer(pulsar.ProducerOptions{Topic: st.topic(e.topics), DisableBatching: true})
		if err != nil {
			e.t.Fatal(err)
		}
		e.t.Cleanup(prod.Close)
		p.producers[st] = prod
	}
	return p
}

// publish sends each event with the alpes properties the relay sets.
func (p *publisher) publish(evs ...event) {
	p.t.Helper()
	for _, ev := range evs {
		payload, err := proto.Marshal(ev.body)
		if err != nil {
			p.t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		_, err = p.producers[ev.stream].Send(ctx, &pulsar.ProducerMessage{
			Key: ev.order, Payload: payload,
			Properties: map[string]string{
				eventmeta.EventID:       ev.id,
				eventmeta.Type:          string(ev.body.ProtoReflect().Descriptor().FullName()),
				eventmeta.SchemaVersion: "1",
				eventmeta.AggregateID:   ev.order,
				eventmeta.CommitLSN:     "0/16B3748",
				eventmeta.CommitTime:    ev.commitTime.UTC().Format(time.RFC3339Nano),
			},
		})
		cancel()
		if err != nil {
			p.t.Fatalf("publishing %s: %v", ev.id, err)
		}
	}
}

// resetSubscription moves reporting's subscription on topic back to the
// first message, so the broker delivers everything again.
func (e *env) resetSubscription(topic string) {
	e.t.Helper()
	path := strings.Replace(topic, "://", "/", 1)
	url := e.broker.AdminURL + "/admin/v2/" + path + "/subscription/reporting/resetcursor/0"
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		e.t.Fatalf("resetting the cursor on %s: status %d", topic, resp.StatusCode)
	}
}
