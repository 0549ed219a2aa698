package chaos_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/alpes/alpes/internal/pulsarslog"
	"github.com/alpes/alpes/lab/loadgen"
	"github.com/alpes/alpes/lab/oracle"
	"github.com/alpes/alpes/lab/procstack"
	"github.com/alpes/alpes/outbox/eventmeta"
)

// TestOracleSeesTamperingOnARealStack is the oracle's negative control on
// real stores: a clean run passes, every order's content compared with
// what the client placed; then one event is published a second time under
// another producer, a timeline entry is deleted, a refused operation's key
// is given an order, and a payment is made to charge one cent less, and
// the checks responsible find each.
func TestOracleSeesTamperingOnARealStack(t *testing.T) {
	skipWithoutPostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := startStack(t, ctx, procstack.Options{})
	var ledger loadgen.Ledger
	if sum, err := loadgen.Run(ctx, loadgen.Config{BFFURL: s.BFFURL, Rate: 100, Count: 60, Seed: 5, Ledger: &ledger}); err != nil {
		t.Fatalf("%v (%+v)", err, sum)
	}
	check := func() oracle.Verdict {
		t.Helper()
		v, err := oracle.Check(ctx, s.OracleConfig(ledger.Ops(), time.Minute, nil))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := check(); !v.OK() || v.Unrecorded != 0 {
		t.Fatalf("a clean run, every order's content recorded:\n%s", v)
	}

	// A second copy of an OrderPlaced, as a producer without deduplication
	// would publish it.
	admin := func(db string) *pgx.Conn {
		c, err := pgx.Connect(ctx, s.Cluster.AdminDSN(db))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		return c
	}
	orders, reporting, bff := admin("orders"), admin("reporting"), admin("bff")
	var id, key, typ string
	var payload []byte
	if err := orders.QueryRow(ctx, `SELECT id::text, aggregate_id, type, payload FROM outbox WHERE topic = $1 AND type LIKE '%OrderPlaced' LIMIT 1`,
		s.Topics.OrderEvents).Scan(&id, &key, &typ, &payload); err != nil {
		t.Fatal(err)
	}
	pc, err := pulsar.NewClient(pulsar.ClientOptions{URL: s.BrokerURL, Logger: pulsarslog.New(slog.New(slog.DiscardHandler))})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	p, err := pc.CreateProducer(pulsar.ProducerOptions{Topic: s.Topics.OrderEvents, Name: "tamper-" + uuid.NewString(), DisableBatching: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Send(ctx, &pulsar.ProducerMessage{Key: key, Payload: payload,
		Properties: map[string]string{eventmeta.EventID: id, eventmeta.Type: typ, eventmeta.AggregateID: key}}); err != nil {
		t.Fatal(err)
	}
	p.Close()
	// An operation the client recorded as refused, whose key has an order.
	var victim, victimOrder string
	if err := bff.QueryRow(ctx, `SELECT key, order_id::text FROM idempotency_keys WHERE order_id::text <> $1 LIMIT 1`, key).Scan(&victim, &victimOrder); err != nil {
		t.Fatal(err)
	}
	// A timeline entry lost, of a third order.
	if _, err := reporting.Exec(ctx, `DELETE FROM timeline_entries WHERE event_id = (
		SELECT event_id FROM timeline_entries WHERE order_id::text NOT IN ($1, $2) LIMIT 1)`, key, victimOrder); err != nil {
		t.Fatal(err)
	}
	// A payment of one cent less than its order's total, of a fourth order.
	payments := admin("payments")
	if _, err := payments.Exec(ctx, `UPDATE payments SET amount_minor = amount_minor - 1 WHERE order_id = (
		SELECT order_id FROM payments WHERE order_id::text NOT IN ($1, $2) ORDER BY order_id DESC LIMIT 1)`, key, victimOrder); err != nil {
		t.Fatal(err)
	}
	ops := ledger.Ops()
	for i := range ops {
		if ops[i].Key == victim {
			ops[i].Fate, ops[i].Status = loadgen.FateFailed, 503
		}
	}
	v, err := oracle.Check(ctx, s.OracleConfig(ops, time.Minute, nil))
	if err != nil {
		t.Fatal(err)
	}
	failed := map[string]int{}
	for _, c := range v.Checks {
		failed[c.Name] = c.Failed
	}
	if failed["broker"] != 1 || failed["timeline"] != 1 || failed["ledger"] != 1 || failed["effects"] == 0 || failed["content"] != 1 || v.OK() {
		t.Errorf("tampered system; want broker, timeline, ledger, effects and content violations:\n%s", v)
	}
}
