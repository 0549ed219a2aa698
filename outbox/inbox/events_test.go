package inbox_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/alpes/alpes/outbox/eventmeta"
	moneyv1 "github.com/alpes/alpes/proto/alpes/money/v1"
	ordersv1 "github.com/alpes/alpes/proto/alpes/orders/v1"
	paymentsv1 "github.com/alpes/alpes/proto/alpes/payments/v1"
)

// event is one test message.
type event struct {
	id, key, typ string
	seq          int
	payload      []byte
	props        map[string]string // overrides and extra properties; "" deletes
	commitTime   time.Time
}

// placed returns an OrderPlaced event for key whose total carries seq.
func placed(key string, seq int) event {
	body, err := proto.Marshal(&ordersv1.OrderPlaced{
		OrderId: key,
		Total:   &moneyv1.Money{AmountMinor: int64(seq), Currency: "EUR"},
	})
	if err != nil {
		panic(err)
	}
	return event{id: uuid.NewString(), key: key, typ: "alpes.orders.v1.OrderPlaced", seq: seq, payload: body}
}

// paymentEvent returns a PaymentProcessed event for order key.
func paymentEvent(key string) event {
	body, err := proto.Marshal(&paymentsv1.PaymentProcessed{
		PaymentId: uuid.NewString(),
		OrderId:   key,
		Status:    paymentsv1.PaymentStatus_PAYMENT_STATUS_APPROVED,
	})
	if err != nil {
		panic(err)
	}
	return event{id: uuid.NewString(), key: key, typ: "alpes.payments.v1.PaymentProcessed", payload: body}
}

// publisher sends events to one topic with a producer of its own, as a
// relay would, with the alpes properties.
type publisher struct {
	t     testing.TB
	p     pulsar.Producer
	topic string
}

func (e *env) publisher(topic string) *publisher {
	e.t.Helper()
	p, err := e.client().CreateProducer(pulsar.ProducerOptions{Topic: topic, DisableBatching: true})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(p.Close)
	return &publisher{t: e.t, p: p, topic: topic}
}

func (p *publisher) publish(evs ...event) {
	p.t.Helper()
	for _, ev := range evs {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		_, err := p.p.Send(ctx, &pulsar.ProducerMessage{Key: ev.key, Payload: ev.payload, Properties: p.properties(ev)})
		cancel()
		if err != nil {
			p.t.Fatalf("publishing %s: %v", ev.id, err)
		}
	}
}

// properties returns the alpes properties of ev, as the relay sets them,
// with ev's overrides applied.
func (p *publisher) properties(ev event) map[string]string {
	ct := ev.commitTime
	if ct.IsZero() {
		ct = time.Now()
	}
	props := map[string]string{
		eventmeta.EventID:       ev.id,
		eventmeta.Type:          ev.typ,
		eventmeta.SchemaVersion: "1",
		eventmeta.AggregateID:   ev.key,
		eventmeta.CommitLSN:     "0/16B3748",
		eventmeta.CommitTime:    ct.UTC().Format(time.RFC3339Nano),
	}
	for k, v := range ev.props {
		if v == "" {
			delete(props, k)
		} else {
			props[k] = v
		}
	}
	return props
}

// sequence returns n OrderPlaced events per key, keys order-0…order-<keys-1>,
// interleaved in publish order.
func sequence(keys, n int) []event { return sequenceFrom(keys, 0, n) }

// sequenceFrom is sequence with seqs from, from+1, ….
func sequenceFrom(keys, from, n int) []event {
	var evs []event
	for i := from; i < from+n; i++ {
		for k := range keys {
			evs = append(evs, placed(fmt.Sprintf("order-%d", k), i))
		}
	}
	return evs
}
