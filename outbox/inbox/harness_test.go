package inbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/alpes/alpes/broker"
	"github.com/alpes/alpes/broker/brokertest"
	"github.com/alpes/alpes/internal/pgtest"
	"github.com/alpes/alpes/internal/testlog"
	"github.com/alpes/alpes/internal/testrun"
	"github.com/alpes/alpes/outbox/inbox"
	ordersv1 "github.com/alpes/alpes/proto/alpes/orders/v1"
	"github.com/alpes/alpes/services/eventcatalog"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	service     = "payments"
	serviceRole = "alpes_payments"
	waitTimeout = 60 * time.Second
)

// env is one test's world: a broker (broker/brokertest) with a tenant of
// its own, whose order and payment event topics the test consumes, and its
// own database.
type env struct {
	t      testing.TB
	broker *brokertest.Broker
	db     *pgtest.DB
	admin  *pgxpool.Pool // superuser, for assertions
	app    *pgxpool.Pool // the service role, as the framework connects
	// ordersTopic and paymentsTopic are the test tenant's event topics.
	ordersTopic, paymentsTopic string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	b := brokertest.Start(t)
	topics, err := eventcatalog.TopicsFor(b.Tenant(t, eventcatalog.NamespaceOrders, eventcatalog.NamespacePayments))
	if err != nil {
		t.Fatal(err)
	}
	db := pgtest.New(t, service)
	e := &env{t: t, broker: b, ordersTopic: topics.OrderEvents, paymentsTopic: topics.PaymentEvents,
		db: db, admin: db.Pool(t), app: db.PoolAs(t, serviceRole)}
	// The handlers' effect: one row per applied event, in apply order.
	e.exec(`CREATE TABLE effects (
		event_id     uuid PRIMARY KEY,
		aggregate_id text NOT NULL,
		seq          int  NOT NULL,
		applied      bigserial)`)
	e.exec(`GRANT SELECT, INSERT ON effects TO ` + serviceRole)
	e.exec(`GRANT USAGE ON SEQUENCE effects_applied_seq TO ` + serviceRole)
	return e
}

// appPoolWith connects a pool of its own as the service role, with its
// configuration changed by change first, closed when the test ends.
func (e *env) appPoolWith(change func(*pgxpool.Config)) *pgxpool.Pool {
	e.t.Helper()
	cfg, err := pgxpool.ParseConfig(e.db.DSNAs(serviceRole))
	if err != nil {
		e.t.Fatal(err)
	}
	change(cfg)
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(pool.Close)
	return pool
}

// exec runs sql as the superuser.
func (e *env) exec(sql string, args ...any) {
	e.t.Helper()
	pgtest.Exec(e.t, e.admin, sql, args...)
}

// count returns the single integer a query yields, as the superuser.
func (e *env) count(sql string, args ...any) int {
	e.t.Helper()
	return pgtest.Count(e.t, e.admin, sql, args...)
}

// client returns a new client of the broker, closed when the test ends.
func (e *env) client() pulsar.Client {
	e.t.Helper()
	return e.broker.Client(e.t)
}

// running is a Consumer running in the background.
type running struct {
	*inbox.Consumer
	*testrun.Background // Run's
}

// recordEffect is the handler of OrderPlaced in most tests.
func recordEffect(ctx context.Context, tx inbox.Tx, msg inbox.Message, body *ordersv1.OrderPlaced) error {
	_, err := tx.Exec(ctx, `INSERT INTO effects (event_id, aggregate_id, seq) VALUES ($1, $2, $3)`,
		msg.EventID, body.GetOrderId(), body.GetTotal().GetAmountMinor())
	return err
}

// config returns a consumer configuration on the test's database and
// broker, with a fresh client, for reg.
func (e *env) config(reg *inbox.Registry, topics ...string) inbox.Config {
	if len(topics) == 0 {
		topics = []string{e.ordersTopic}
	}
	return inbox.Config{
		Client:       e.client(),
		DB:           e.app,
		Subscription: service,
		Topics:       topics,
		Registry:     reg,
		Logger:       testlog.New(e.t),
		RetryBackoff: 10 * time.Millisecond,
	}
}

// effectRegistry handles OrderPlaced with recordEffect.
func effectRegistry() *inbox.Registry {
	reg := inbox.NewRegistry()
	inbox.Handle(reg, recordEffect)
	return reg
}

func (e *env) start(cfg inbox.Config, setup ...func(*inbox.Consumer)) *running {
	e.t.Helper()
	return e.startCtx(context.Background(), cfg, setup...)
}

// startCtx starts a consumer that also stops when parent ends.
func (e *env) startCtx(parent context.Context, cfg inbox.Config, setup ...func(*inbox.Consumer)) *running {
	e.t.Helper()
	c, err := inbox.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, f := range setup {
		f(c)
	}
	return &running{Consumer: c, Background: testrun.GoUnder(e.t, parent, c.Run)}
}

// stop cancels the consumer and waits for Run to return its result.
func (r *running) stop(t testing.TB) error {
	t.Helper()
	return r.StopWithin(t, "consumer", waitTimeout)
}

// waitFor polls cond until it holds or waitTimeout passes.
func (e *env) waitFor(what string, cond func() bool) {
	e.t.Helper()
	pgtest.WaitFor(e.t, waitTimeout, what, cond)
}

// waitEffects waits until the effects table holds n rows.
func (e *env) waitEffects(n int) {
	e.t.Helper()
	e.waitFor(fmt.Sprintf("%d effects", n), func() bool { return e.count(`SELECT count(*) FROM effects`) >= n })
}

// subscriptionStats returns the stats of the service's subscription on
// topic, and whether it exists yet.
func (e *env) subscriptionStats(topic string) (broker.SubscriptionStats, bool) {
	e.t.Helper()
	path := strings.TrimPrefix(topic, "persistent://")
	resp, err := http.Get(e.broker.AdminURL + "/admin/v2/persistent/" + path + "/stats")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var st broker.TopicStats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		e.t.Fatal(err)
	}
	sub, ok := st.Subscriptions[service]
	return sub, ok
}

// backlog returns the subscription's unacknowledged entries on topic, or -1
// before the subscription exists.
func (e *env) backlog(topic string) int64 {
	e.t.Helper()
	sub, ok := e.subscriptionStats(topic)
	if !ok {
		return -1
	}
	return sub.MsgBacklog
}

// waitDrained waits until the subscription exists and every message of topic
// is acknowledged. Call it after publishing: the subscription starts from the
// earliest message, so it begins with the whole backlog.
func (e *env) waitDrained(topic string) {
	e.t.Helper()
	e.waitFor("an empty backlog on "+topic, func() bool { return e.backlog(topic) == 0 })
}

// assertEffects checks that each event has exactly one effect and nothing
// else has any, and that each key's effects were applied in seq order.
func (e *env) assertEffects(evs []event) {
	e.t.Helper()
	rows, err := e.admin.Query(context.Background(), `SELECT event_id::text, aggregate_id, seq FROM effects ORDER BY applied`)
	if err != nil {
		e.t.Fatal(err)
	}
	type effect struct {
		id, key string
		seq     int
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (effect, error) {
		var f effect
		return f, r.Scan(&f.id, &f.key, &f.seq)
	})
	if err != nil {
		e.t.Fatal(err)
	}
	want := map[string]bool{}
	for _, ev := range evs {
		want[ev.id] = true
	}
	if len(got) != len(want) {
		e.t.Errorf("%d effects, want %d", len(got), len(want))
	}
	last := map[string]int{}
	for _, f := range got {
		if !want[f.id] {
			e.t.Errorf("unexpected effect of %s", f.id)
		}
		if prev, ok := last[f.key]; ok && f.seq <= prev {
			e.t.Errorf("key %s: seq %d applied after %d", f.key, f.seq, prev)
		}
		last[f.key] = f.seq
	}
}
