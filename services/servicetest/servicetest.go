// Package servicetest is the shared test world of the services that consume
// and produce through the outbox (orders, payments): a broker
// (broker/brokertest: embedded, or the run's real Pulsar), a Pulsar tenant
// of the test's own, the service's migrated database, a relay carrying its
// outbox, and helpers to publish messages as another service's relay would,
// watch topics and wait on the database. It is for tests only.
package servicetest

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/proto"

	"github.com/alpes/alpes/broker/brokertest"
	"github.com/alpes/alpes/internal/pgtest"
	"github.com/alpes/alpes/migrations"
	"github.com/alpes/alpes/outbox/eventmeta"
	"github.com/alpes/alpes/relay"
	"github.com/alpes/alpes/services/eventcatalog"
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
		PulsarURL:      e.Broker.ServiceURL,
		PulsarAdminURL: e.Broker.AdminURL,
		Logger:         Logger(e.T),
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
	deadline := time.Now().Add(WaitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			e.T.Fatalf("timed out after %s waiting for %s", WaitTimeout, what)
		}
		time.Sleep(10 * time.Millisecond) // polling external state, not synchronising goroutines
	}
}

// Count returns the single integer a query yields.
func (e *Env) Count(sql string, args ...any) int {
	e.T.Helper()
	var n int
	if err := e.Admin.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		e.T.Fatalf("%s: %v", sql, err)
	}
	return n
}

// Exec runs sql as the superuser.
func (e *Env) Exec(sql string, args ...any) {
	e.T.Helper()
	if _, err := e.Admin.Exec(context.Background(), sql, args...); err != nil {
		e.T.Fatalf("%s: %v", sql, err)
	}
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
	e.T.Cleanup(func() {
		cancel()
		<-done
		consumer.Close()
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

// Logger logs warnings and worse into the test's output.
func Logger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// LogBuffer keeps what a logger wrote, for a test to wait on; safe for
// concurrent use.
type LogBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TeeLogger is Logger, also writing into buf.
func TeeLogger(t *testing.T, buf *LogBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(io.MultiWriter(testWriter{t}, buf), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// NewUUID returns a random (version 4) UUID in canonical form.
func NewUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

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
