package orders_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/alpes/alpes/internal/pgtest"
	"github.com/alpes/alpes/migrations"
	"github.com/alpes/alpes/outbox/eventmeta"
)

// startPayments runs a payments Service on db in the background until the
// test ends.
func (e *env) startPayments(db *pgtest.DB) {
	e.T.Helper()
	e.StartService("payments", db.PoolAs(e.T, migrations.ServiceRole("payments")))
}

// TestOrdersAndPaymentsSettleEveryOrder runs two instances of orders and of
// payments, each service's outbox carried by its relay, and checks that
// every order reaches the terminal state its content calls for, with one
// event per step, in order per order.
func TestOrdersAndPaymentsSettleEveryOrder(t *testing.T) {
	e := newEnv(t)
	paymentsDB := pgtest.New(t, "payments")
	e.StartRelay("payments", paymentsDB)
	events := e.Watch(e.Topics.OrderEvents)
	for range 2 {
		e.startService()
		e.startPayments(paymentsDB)
	}

	const n = 60
	placed, confirmed, rejected := "alpes.orders.v1.OrderPlaced", "alpes.orders.v1.OrderConfirmed", "alpes.orders.v1.OrderRejected"
	want := map[string][]string{} // order id → its event types, in order
	for i := range n {
		cmd := placeOrder(fmt.Sprintf("cust-%d", i), "CARABINER-HMS", 1+i%5, "HEADLAMP-400", 1)
		switch i % 4 {
		case 0: // the gateway declines a blocked card
			cmd.CustomerId = "blocked-" + cmd.CustomerId
			want[cmd.GetOrderId()] = []string{placed, rejected}
		case 1: // orders rejects an unknown product
			cmd.Lines[1].Sku = "NOT-SOLD-HERE"
			want[cmd.GetOrderId()] = []string{rejected}
		case 2: // the gateway declines more than 5,000.00 EUR
			cmd.Lines[0].Quantity = 400
			want[cmd.GetOrderId()] = []string{placed, rejected}
		default:
			want[cmd.GetOrderId()] = []string{placed, confirmed}
		}
		e.send(cmd)
	}

	got := func() map[string][]string {
		out := map[string][]string{}
		for _, m := range events.All() {
			out[m.Key()] = append(out[m.Key()], m.Properties()[eventmeta.Type])
		}
		return out
	}
	e.WaitFor(fmt.Sprintf("%d orders settled", n), func() bool {
		settled := 0
		for _, types := range got() {
			if slices.Contains(types, confirmed) || slices.Contains(types, rejected) {
				settled++
			}
		}
		return settled == n
	})
	// Every order settled; a duplicate would show up as an extra event.
	for id, types := range got() {
		if !slices.Equal(types, want[id]) {
			t.Errorf("order %s: events %v, want %v", id, types, want[id])
		}
	}
	steps := 0
	for _, types := range want {
		steps += len(types)
	}
	if c := e.Count(`SELECT count(*) FROM outbox WHERE topic = $1`, e.Topics.OrderEvents); c != steps {
		t.Errorf("%d order events in the outbox, want %d", c, steps)
	}
	if c := e.Count(`SELECT count(*) FROM orders WHERE status = 'confirmed'`); c != n/4 {
		t.Errorf("%d confirmed orders, want %d", c, n/4)
	}
	var charged int
	if err := paymentsDB.Pool(t).QueryRow(context.Background(), `SELECT count(*) FROM payments`).Scan(&charged); err != nil {
		t.Fatal(err)
	}
	if charged != n*3/4 {
		t.Errorf("%d payments, want %d", charged, n*3/4)
	}
}
