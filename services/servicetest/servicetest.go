// Package servicetest is the shared test world of the services that consume
// and produce through the outbox (orders, payments): a broker
// (broker/brokertest: embedded, or the run's real Pulsar), a Pulsar tenant
// of the test's own, the service's migrated database, a relay carrying its
// outbox, and helpers to publish messages as another service's relay would,
// watch topics and wait on the database. It is for tests only.
package servicetest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/alpes/alpes/broker/brokertest"
	"github.com/alpes/alpes/internal/metrics"
	"github.com/alpes/alpes/internal/metrics/metricstest"
	"github.com/alpes/alpes/internal/pgtest"
	"github.com/alpes/alpes/internal/testlog"
	"github.com/alpes/alpes/migrations"
	"github.com/alpes/alpes/outbox/eventmeta"
	"github.com/alpes/alpes/outbox/inbox"
	"github.com/alpes/alpes/relay"
	"github.com/alpes/alpes/services/eventcatalog"
	"github.com/alpes/alpes/services/orders"
	"github.com/alpes/alpes/services/payments"
)

// WaitTimeout bounds every wait on the pipeline.
const WaitTimeout = 60 * time.Second

// Env is one test's world: a broker, a tenant on it that no other test
// uses, a service's database, and a relay carrying its outbox to the broker.
// Its fields are for the test to use.
type Env struct {
	T      *testing.T
	Broker *brokertest.Broker
	// Topics are the test's tenant's: give them to the service under test.
	Topics eventcatalog.Topics
	DB     *pgtest.DB
	Admin  *pgxpool.Pool // superuser, for setup and assertions
	App    *pgxpool.Pool // the service's own login, as the service connects
	Client pulsar.Client
}

// New gives the test a broker (brokertest.Start) with a tenant of its own
// holding alpes's namespaces, a migrated database of service, and a relay on
// it that streams before New returns.
func New(t *testing.T, service string) *Env {
	t.Helper()
	b := brokertest.Start(t)
	topics, err := eventcatalog.TopicsFor(b.Tenant(t, eventcatalog.Namespaces()...))
	if err != nil {
		t.Fatal(err)
	}
	db := pgtest.New(t, service)
	e := &Env{T: t, Broker: b, Topics: topics, DB: db, Admin: db.Pool(t), App: db.PoolAs(t, migrations.ServiceRole(service))}
	e.Client = e.NewClient()
	e.StartRelay(service, db)
	return e
}

// NewClient returns a Pulsar client of the broker, closed with the test.
func (e *Env) NewClient() pulsar.Client {
	e.T.Helper()
	return e.Broker.Client(e.T)
}

// StartRelay runs a relay for source, a producer's database, in the
// background and waits until it streams, so every outbox row written
// afterwards reaches the broker. The relay publishes each row to the topic
// the row names; what it quarantines goes to the test tenant's quarantine
// topic.
func (e *Env) StartRelay(source string, db *pgtest.DB) {
	e.T.Helper()
	r, err := relay.New(relay.Config{
		Sources: []relay.SourceConfig{{
			Name: source, DSN: db.DSNAs(migrations.RelayRole), Slot: db.Name,
			QuarantineTopic: e.Topics.RelayQuarantine,
		}},
		Pulsar: relay.PulsarConfig{URL: e.Broker.ServiceURL, AdminURL: e.Broker.AdminURL},
		Logger: Logger(e.T),
	})
	if err != nil {
		e.T.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	e.T.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			e.T.Errorf("relay: %v", err)
		}
	})
	e.WaitFor("the relay to stream", func() bool {
		lag := r.Lag()
		return len(lag) == 1 && lag[0].State == relay.StateStreaming
	})
}

// Publish sends body to topic as the relay of its producer would: keyed by
// key, with the alpes properties, under eventID. It returns eventID.
func (e *Env) Publish(topic, key string, body proto.Message, eventID string) string {
	e.T.Helper()
	payload, err := proto.Marshal(body)
	if err != nil {
		e.T.Fatal(err)
	}
	p, err := e.Client.CreateProducer(pulsar.ProducerOptions{Topic: topic, DisableBatching: true})
	if err != nil {
		e.T.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	_, err = p.Send(ctx, &pulsar.ProducerMessage{Key: key, Payload: payload, Properties: map[string]string{
		eventmeta.EventID:       eventID,
		eventmeta.Type:          string(body.ProtoReflect().Descriptor().FullName()),
		eventmeta.SchemaVersion: "1",
		eventmeta.AggregateID:   key,
		eventmeta.CommitLSN:     "0/16B3748",
		eventmeta.CommitTime:    time.Now().UTC().Format(time.RFC3339Nano),
	}})
	if err != nil {
		e.T.Fatalf("publishing %s: %v", eventID, err)
	}
	return eventID
}

// WaitFor polls cond until it holds or WaitTimeout passes.
func (e *Env) WaitFor(what string, cond func() bool) {
	e.T.Helper()
	pgtest.WaitFor(e.T, WaitTimeout, what, cond)
}

// Count returns the single integer a query yields.
func (e *Env) Count(sql string, args ...any) int {
	e.T.Helper()
	return pgtest.Count(e.T, e.Admin, sql, args...)
}

// Exec runs sql as the superuser.
func (e *Env) Exec(sql string, args ...any) {
	e.T.Helper()
	pgtest.Exec(e.T, e.Admin, sql, args...)
}

// WaitApplied waits until the inbox holds eventID: the message is applied,
// skipped or parked, and committed.
func (e *Env) WaitApplied(eventID string) {
	e.T.Helper()
	e.WaitFor("event "+eventID+" in the inbox", func() bool {
		return e.Count(`SELECT count(*) FROM inbox WHERE event_id = $1`, eventID) == 1
	})
}

// ParkedReason returns why eventID was parked, or "" when it was not.
func (e *Env) ParkedReason(eventID string) string {
	e.T.Helper()
	var reason string
	_ = e.Admin.QueryRow(context.Background(), `SELECT reason FROM parked_messages WHERE event_id = $1`, eventID).Scan(&reason)
	return reason
}

// Received is what a watcher saw on one topic, in order.
type Received struct {
	mu   sync.Mutex
	msgs []pulsar.Message
}

// Watch records every message of topic, from the earliest, until the test
// ends, through a subscription of its own.
func (e *Env) Watch(topic string) *Received {
	e.T.Helper()
	consumer, err := e.Client.Subscribe(pulsar.ConsumerOptions{
		Topic:                       topic,
		SubscriptionName:            "test-watch-" + brokertest.UniqueName(e.T),
		Type:                        pulsar.Exclusive,
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest,
	})
	if err != nil {
		e.T.Fatal(err)
	}
	rec := &Received{}
	brokertest.Consume(e.T, consumer, func(msg pulsar.Message) {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		rec.msgs = append(rec.msgs, msg)
	})
	return rec
}

// All returns a copy of every message received so far, in order.
func (r *Received) All() []pulsar.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]pulsar.Message(nil), r.msgs...)
}

// Of returns the messages received so far with key and alpes-type typ.
func (r *Received) Of(key, typ string) []pulsar.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []pulsar.Message
	for _, m := range r.msgs {
		if m.Key() == key && m.Properties()[eventmeta.Type] == typ {
			out = append(out, m)
		}
	}
	return out
}

// Await waits until a message with key and the type of into arrives, and
// decodes the first such message into into.
func (e *Env) Await(r *Received, key string, into proto.Message) pulsar.Message {
	e.T.Helper()
	typ := string(into.ProtoReflect().Descriptor().FullName())
	var got []pulsar.Message
	e.WaitFor(typ+" for "+key, func() bool {
		got = r.Of(key, typ)
		return len(got) > 0
	})
	if err := proto.Unmarshal(got[0].Payload(), into); err != nil {
		e.T.Fatalf("decoding %s: %v", typ, err)
	}
	return got[0]
}

// Logger logs warnings and worse into the test's output (internal/testlog).
func Logger(t *testing.T) *slog.Logger { return testlog.New(t) }

// LogBuffer keeps what a logger wrote, for a test to wait on; safe for
// concurrent use.
type LogBuffer = testlog.Buffer

// TeeLogger is Logger, also writing into buf.
func TeeLogger(t *testing.T, buf *LogBuffer) *slog.Logger { return testlog.New(t, buf) }

// NewUUID returns a random (version 4) UUID in canonical form.
func NewUUID() string { return uuid.NewString() }

// Running is a service's Run, started in the background by Start.
type Running struct {
	name   string
	cancel context.CancelFunc
	done   chan error
}

// Start runs run in the background until Stop is called or the test ends.
func (e *Env) Start(name string, run func(context.Context) error) *Running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &Running{name: name, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- run(ctx) }()
	e.T.Cleanup(func() { r.Stop(e.T) })
	return r
}

// RetryBackoff is the first retry wait of the services StartService runs:
// short, so a test's retries take milliseconds.
const RetryBackoff = 10 * time.Millisecond

// StartService runs a Service of service ("orders" or "payments") on pool,
// a database of that service connected as its role, with the test's client,
// topics and logger and RetryBackoff, as Start does.
func (e *Env) StartService(service string, pool *pgxpool.Pool) *Running {
	e.T.Helper()
	var svc interface{ Run(context.Context) error }
	var err error
	switch service {
	case "orders":
		svc, err = orders.New(orders.Config{DB: pool, Pulsar: e.Client, Topics: e.Topics, Logger: Logger(e.T),
			Consumer: inbox.Config{RetryBackoff: RetryBackoff}})
	case "payments":
		svc, err = payments.New(payments.Config{DB: pool, Pulsar: e.Client, Topics: e.Topics, Logger: Logger(e.T),
			Consumer: inbox.Config{RetryBackoff: RetryBackoff}})
	default:
		err = fmt.Errorf("servicetest: no service %q to start", service)
	}
	if err != nil {
		e.T.Fatal(err)
	}
	return e.Start(service, svc.Run)
}

// Process is a service started as its command runs it (`alpes orders`,
// `alpes payments`): with a metrics registry of its own
// (internal/metrics), in which its Pulsar client registers too, and its
// HTTP endpoints, /v1/progress, /healthz, /readyz and /metrics, served at
// URL.
type Process struct {
	*Running
	URL string
}

// Status GETs url and returns the status code of the answer.
func (e *Env) Status(url string) int {
	e.T.Helper()
	resp, err := http.Get(url)
	if err != nil {
		e.T.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// StartProcess runs service ("orders" or "payments") on pool, a database
// of that service connected as its role, with a Pulsar client of its own,
// beside its HTTP endpoints, until the test ends.
func (e *Env) StartProcess(service string, pool *pgxpool.Pool) *Process {
	e.T.Helper()
	reg := metrics.NewRegistry()
	client := e.Broker.ClientWithMetrics(e.T, reg)
	var svc interface {
		Run(context.Context) error
		Ready(context.Context) error
	}
	var err error
	ic := inbox.Config{RetryBackoff: RetryBackoff}
	switch service {
	case "orders":
		svc, err = orders.New(orders.Config{DB: pool, Pulsar: client, Topics: e.Topics, Logger: Logger(e.T), Consumer: ic, Metrics: reg})
	case "payments":
		svc, err = payments.New(payments.Config{DB: pool, Pulsar: client, Topics: e.Topics, Logger: Logger(e.T), Consumer: ic, Metrics: reg})
	default:
		err = fmt.Errorf("servicetest: no service %q to start", service)
	}
	if err != nil {
		e.T.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.T.Fatal(err)
	}
	e.Start(service+"'s endpoints", func(ctx context.Context) error {
		return inbox.ServeProgress(ctx, ln, service, pool, svc.Ready, reg)
	})
	return &Process{Running: e.Start(service, svc.Run), URL: "http://" + ln.Addr().String()}
}

// Stop ends the service and checks its Run returned nil; stopping twice is
// harmless.
func (r *Running) Stop(t testing.TB) {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok && err != nil {
			t.Errorf("%s Run: %v", r.name, err)
		}
		if ok {
			close(r.done)
		}
	case <-time.After(WaitTimeout):
		t.Fatalf("%s did not stop", r.name)
	}
}

// CheckConsumerProcess is the metrics-and-readiness test of a consuming
// service run as its command runs it (StartProcess): ready once subscribed;
// after send, one event applied on topic, its /metrics serves the runtime's
// and its Pulsar client's families and its inbox's counts and latencies;
// with its database pool closed, /readyz answers 503 and /healthz 200.
// pool must be the service's own, given to nothing else.
func (e *Env) CheckConsumerProcess(service string, pool *pgxpool.Pool, topic string, send func()) {
	t := e.T
	t.Helper()
	p := e.StartProcess(service, pool)
	e.WaitFor(service+" ready", func() bool { return e.Status(p.URL+"/readyz") == http.StatusOK })
	send()
	prefix := "alpes_" + service + "_"
	var fams metricstest.Families
	e.WaitFor("the apply observed", func() bool {
		fams = metricstest.Scrape(t, p.URL+"/metrics", "")
		n, _ := fams.Value(prefix+"inbox_commit_to_apply_seconds", "topic", topic)
		return n == 1
	})
	fams.Require(t, metricstest.Runtime)
	fams.Require(t, metricstest.PulsarClient)
	fams.Require(t, map[string]dto.MetricType{
		prefix + "events_applied_total":          dto.MetricType_COUNTER,
		prefix + "events_duplicate_total":        dto.MetricType_COUNTER,
		prefix + "inbox_apply_duration_seconds":  dto.MetricType_HISTOGRAM,
		prefix + "inbox_commit_to_apply_seconds": dto.MetricType_HISTOGRAM,
		prefix + "inbox_lag_seconds":             dto.MetricType_GAUGE,
	})
	if n, _ := fams.Value(prefix + "events_applied_total"); n != 1 {
		t.Errorf("events applied: %v, want 1", n)
	}
	pool.Close()
	if code := e.Status(p.URL + "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the database gone: %d, want 503", code)
	}
	if code := e.Status(p.URL + "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz with the database gone: %d, want 200", code)
	}
}
