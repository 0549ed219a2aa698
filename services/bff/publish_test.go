package bff

import (
	"context"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/alpes/alpes/outbox/eventmeta"
	catalogv1 "github.com/alpes/alpes/proto/alpes/catalog/v1"
	moneyv1 "github.com/alpes/alpes/proto/alpes/money/v1"
	ordersv1 "github.com/alpes/alpes/proto/alpes/orders/v1"
)

// publish sends msg to topic under key with the properties the relay sets,
// as the orders service's relay would.
func (e *env) publish(topic, key string, msg proto.Message) {
	e.t.Helper()
	p, err := e.client.CreateProducer(pulsar.ProducerOptions{Topic: topic, DisableBatching: true})
	if err != nil {
		e.t.Fatal(err)
	}
	defer p.Close()
	payload, err := proto.Marshal(msg)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_, err = p.Send(ctx, &pulsar.ProducerMessage{Key: key, Payload: payload, Properties: map[string]string{
		eventmeta.EventID:       uuid.NewString(),
		eventmeta.Type:          string(msg.ProtoReflect().Descriptor().FullName()),
		eventmeta.SchemaVersion: "1",
		eventmeta.AggregateID:   key,
		eventmeta.CommitLSN:     "0/16B3748",
		eventmeta.CommitTime:    time.Now().UTC().Format(time.RFC3339Nano),
	}})
	if err != nil {
		e.t.Fatalf("publishing %T: %v", msg, err)
	}
}

func eur(minor int64) *moneyv1.Money { return &moneyv1.Money{AmountMinor: minor, Currency: "EUR"} }

func orderPlaced(id string) *ordersv1.OrderPlaced {
	now := timestamppb.Now()
	return &ordersv1.OrderPlaced{
		OrderId: id, CustomerId: "c-1", Address: "1 Main St",
		Lines: []*ordersv1.PricedLine{{Sku: "SKU-1", Name: "Cheese", Quantity: 2, UnitPrice: eur(250), LineTotal: eur(500)}},
		Total: eur(500), RequestedAt: now, PlacedAt: now,
	}
}

func orderConfirmed(id string) *ordersv1.OrderConfirmed {
	return &ordersv1.OrderConfirmed{OrderId: id, PaymentId: uuid.NewString(), Total: eur(500), ConfirmedAt: timestamppb.Now()}
}

func orderRejected(id string, reason ordersv1.RejectionReason, detail string) *ordersv1.OrderRejected {
	return &ordersv1.OrderRejected{OrderId: id, Reason: reason, Detail: detail, RequestedAt: timestamppb.Now(), RejectedAt: timestamppb.Now()}
}

func productUpdated(sku, name string, price int64, at time.Time) *catalogv1.ProductUpdated {
	return &catalogv1.ProductUpdated{Sku: sku, Name: name, Price: eur(price), UpdatedAt: timestamppb.New(at)}
}
