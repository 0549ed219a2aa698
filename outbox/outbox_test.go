package outbox_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	"github.com/alpes/alpes/internal/pgtest"
	"github.com/alpes/alpes/migrations"
	"github.com/alpes/alpes/outbox"
	ordersv1 "github.com/alpes/alpes/proto/alpes/orders/v1"
	"github.com/alpes/alpes/services/eventcatalog"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestAppendWritesARowTheRelayCanPublish(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t, "bff")
	pool := db.PoolAs(t, migrations.ServiceRole("bff"))
	body := &ordersv1.PlaceOrder{OrderId: "0193a1b2-0000-7000-8000-000000000001", CustomerId: "c-1"}
	var id string
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var err error
		id, err = outbox.Append(ctx, tx, outbox.Message{
			Topic: eventcatalog.DefaultTopics().OrderCommands, AggregateID: body.OrderId, Body: body,
			Headers: map[string]string{"traceparent": "00-a-b-01"},
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var topic, key, typ, traceparent string
	var version int
	var payload []byte
	err = db.Pool(t).QueryRow(ctx, `SELECT topic, aggregate_id, type, schema_version, payload, headers->>'traceparent' FROM outbox WHERE id = $1`, id).
		Scan(&topic, &key, &typ, &version, &payload, &traceparent)
	if err != nil {
		t.Fatal(err)
	}
	var decoded ordersv1.PlaceOrder
	if err := proto.Unmarshal(payload, &decoded); err != nil {
		t.Fatal(err)
	}
	if topic != eventcatalog.DefaultTopics().OrderCommands || key != body.OrderId || typ != "alpes.orders.v1.PlaceOrder" ||
		version != 1 || decoded.CustomerId != "c-1" || traceparent != "00-a-b-01" {
		t.Errorf("row: %s %s %s v%d %v %s", topic, key, typ, version, &decoded, traceparent)
	}
}

func TestAppendRollsBackWithTheTransaction(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t, "orders")
	pool := db.PoolAs(t, migrations.ServiceRole("orders"))
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := outbox.Append(ctx, tx, outbox.Message{Topic: eventcatalog.DefaultTopics().OrderEvents, AggregateID: "o-1", Body: &ordersv1.OrderConfirmed{OrderId: "o-1"}}); err != nil {
		t.Fatal(err)
	}
	tx.Rollback(ctx)
	var n int
	db.Pool(t).QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&n)
	if n != 0 {
		t.Errorf("%d rows after rollback", n)
	}
}

func TestAppendRefusesAnIncompleteMessage(t *testing.T) {
	if _, err := outbox.Append(context.Background(), nil, outbox.Message{Topic: "t"}); err == nil {
		t.Error("want an error")
	}
}
