package orders_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/proto"

	"github.com/alpes/alpes/internal/eventmeta"
	"github.com/alpes/alpes/internal/pgtest"
	"github.com/alpes/alpes/internal/pulsarbroker"
	"github.com/alpes/alpes/internal/pulsarslog"
	"github.com/alpes/alpes/migrations"
	"github.com/alpes/alpes/relay"
	"github.com/alpes/alpes/services/orders"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// waitTimeout bounds every wait on the pipeline.
const waitTimeout = 60 * time.Second

// env is one test's world: a broker, orders' database, and a relay carrying
// its outbox to the broker.
type env struct {
	t      *testing.T
	broker *pulsarbroker.Broker
	db     *pgtest.DB
	admin  *pgxpool.Pool // superuser, for setup and assertions
	app    *pgxpool.Pool // alpes_orders, as the service connects
	client pulsar.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	cfg := pulsarbroker.DefaultConfig()
	cfg.ServiceAddr, cfg.AdminAddr = "127.0.0.1:0", "127.0.0.1:0"
	b, err := pulsarbroker.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	db := pgtest.New(t, "orders")
	e := &env{t: t, broker: b, db: db, admin: db.Pool(t), app: db.PoolAs(t, migrations.ServiceRole("orders"))}
	e.client = e.newClient()
	e.startRelay("orders", db)
	return e
}

func (e *env) newClient() pulsar.Client {
	e.t.Helper()
	c, err := pulsar.NewClient(pulsar.ClientOptions{
		URL:    e.broker.ServiceURL(),
		Logger: pulsarslog.New(slog.New(slog.DiscardHandler)),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(c.Close)
	return c
}

// startRelay runs a relay for source, a producer's database, in the
// background and waits until it streams, so every outbox row written
// afterwards reaches the broker.
func (e *env) startRelay(source string, db *pgtest.DB) {
	e.t.Helper()
	r, err := relay.New(relay.Config{
		Sources: []relay.SourceConfig{{
			Name: source, DSN: db.DSNAs(migrations.RelayRole), Slot: db.Name,
		}},
		PulsarURL: e.broker.ServiceURL(),
		Logger:    testLogger(e.t),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("relay: %v", err)
		}
	})
	e.waitFor("the relay to stream", func() bool {
		lag := r.Lag()
		return len(lag) == 1 && lag[0].State == relay.StateStreaming
	})
}

// running is an orders Service running in the background.
type running struct {
	*orders.Service
	cancel context.CancelFunc
	done   chan error
}

// startService starts an orders Service on the test's database and broker.
func (e *env) startService() *running {
	e.t.Helper()
	svc, err := orders.New(orders.Config{
		DB:     e.app,
		Client: e.client,
		Logger: testLogger(e.t),
		Tuning: orders.Tuning{RetryBackoff: 10 * time.Millisecond},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Service: svc, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- svc.Run(ctx) }()
	e.t.Cleanup(func() { r.stop(e.t) })
	return r
}

// stop ends the service and checks Run returned nil; stopping twice is harmless.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok && err != nil {
			t.Errorf("orders Run: %v", err)
		}
		if ok {
			close(r.done)
		}
	case <-time.After(waitTimeout):
		t.Fatal("orders did not stop")
	}
}

// publish sends body to topic as the relay of its producer would: keyed by
// key, with the alpes properties, under eventID. It returns eventID.
func (e *env) publish(topic, key string, body proto.Message, eventID string) string {
	e.t.Helper()
	payload, err := proto.Marshal(body)
	if err != nil {
		e.t.Fatal(err)
	}
	p, err := e.client.CreateProducer(pulsar.ProducerOptions{Topic: topic, DisableBatching: true})
	if err != nil {
		e.t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
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
		e.t.Fatalf("publishing %s: %v", eventID, err)
	}
	return eventID
}

// waitFor polls cond until it holds or waitTimeout passes.
func (e *env) waitFor(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %s waiting for %s", waitTimeout, what)
		}
		time.Sleep(10 * time.Millisecond) // polling external state, not synchronising goroutines
	}
}

// count returns the single integer a query yields.
func (e *env) count(sql string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.admin.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// exec runs sql as the superuser.
func (e *env) exec(sql string, args ...any) {
	e.t.Helper()
	if _, err := e.admin.Exec(context.Background(), sql, args...); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
}

// waitApplied waits until the inbox holds eventID: the message is applied,
// skipped or parked, and committed.
func (e *env) waitApplied(eventID string) {
	e.t.Helper()
	e.waitFor("event "+eventID+" in the inbox", func() bool {
		return e.count(`SELECT count(*) FROM inbox WHERE event_id = $1`, eventID) == 1
	})
}

// parkedReason returns why eventID was parked, or "" when it was not.
func (e *env) parkedReason(eventID string) string {
	e.t.Helper()
	var reason string
	_ = e.admin.QueryRow(context.Background(), `SELECT reason FROM parked_messages WHERE event_id = $1`, eventID).Scan(&reason)
	return reason
}

// received is what a watcher saw on one topic, in order.
type received struct {
	mu   sync.Mutex
	msgs []pulsar.Message
}

// watch records every message of topic, from the earliest, until the test ends.
func (e *env) watch(topic string) *received {
	e.t.Helper()
	consumer, err := e.client.Subscribe(pulsar.ConsumerOptions{
		Topic:                       topic,
		SubscriptionName:            "test-watch",
		Type:                        pulsar.Exclusive,
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	rec := &received{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			msg, err := consumer.Receive(ctx)
			if err != nil {
				return
			}
			consumer.Ack(msg)
			rec.mu.Lock()
			rec.msgs = append(rec.msgs, msg)
			rec.mu.Unlock()
		}
	}()
	e.t.Cleanup(func() {
		cancel()
		<-done
		consumer.Close()
	})
	return rec
}

// of returns the messages received so far with key and alpes-type typ.
func (r *received) of(key, typ string) []pulsar.Message {
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

// await waits until a message with key and the type of into arrives, and
// decodes the first such message into into.
func (e *env) await(r *received, key string, into proto.Message) pulsar.Message {
	e.t.Helper()
	typ := string(into.ProtoReflect().Descriptor().FullName())
	var got []pulsar.Message
	e.waitFor(typ+" for "+key, func() bool {
		got = r.of(key, typ)
		return len(got) > 0
	})
	if err := proto.Unmarshal(got[0].Payload(), into); err != nil {
		e.t.Fatalf("decoding %s: %v", typ, err)
	}
	return got[0]
}

// testLogger logs warnings and worse into the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// newUUID returns a random (version 4) UUID in canonical form.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
