package relay_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/alpes/alpes/broker/brokertest"
	"github.com/alpes/alpes/internal/pgtest"
	"github.com/alpes/alpes/internal/testlog"
	"github.com/alpes/alpes/internal/testrun"
	"github.com/alpes/alpes/migrations"
	"github.com/alpes/alpes/outbox/eventmeta"
	"github.com/alpes/alpes/relay"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	pgtest.Main(m)
}

// waitTimeout bounds every wait on the pipeline.
const waitTimeout = 60 * time.Second

// testBroker is a test's broker (brokertest: embedded, or the real Pulsar of
// the run) with a namespace of the test's own, deduplication on, holding the
// topics its outbox rows and quarantined rows go to.
type testBroker struct {
	*brokertest.Broker
	topic      string        // where the test's outbox rows go
	quarantine string        // the relay's quarantine topic in the test
	counter    pulsar.Client // reads the topic for storedMessages, once startCounting made it
}

// startBroker returns the test's broker: embedded, or the real Pulsar of the
// run.
func startBroker(t testing.TB) *testBroker {
	t.Helper()
	return withTopics(t, brokertest.Start(t))
}

// withTopics gives b a namespace of the test's own and its topics.
func withTopics(t testing.TB, b *brokertest.Broker) *testBroker {
	t.Helper()
	ns := b.Namespace(t)
	return &testBroker{Broker: b, topic: "persistent://" + ns + "/events.v1", quarantine: "persistent://" + ns + "/quarantine.v1"}
}

// namespaceWithoutDedup is a namespace of the test's own with deduplication
// turned off.
func (b *testBroker) namespaceWithoutDedup(t testing.TB) string {
	t.Helper()
	ns := b.Namespace(t)
	if err := b.Admin().SetNamespaceDeduplication(context.Background(), ns, false); err != nil {
		t.Fatal(err)
	}
	return ns
}

// source is the relay's source for db, quarantining into the test's topic.
func (b *testBroker) source(db *pgtest.DB) relay.SourceConfig {
	return relay.SourceConfig{Name: "orders", DSN: db.DSNAs(migrations.RelayRole), Slot: db.Name, QuarantineTopic: b.quarantine}
}

// config is a relay configuration for b, with sources, whose quarantine
// topic is the test's unless they name one.
func (b *testBroker) config(sources ...relay.SourceConfig) relay.Config {
	sources = slices.Clone(sources)
	for i := range sources {
		if sources[i].QuarantineTopic == "" {
			sources[i].QuarantineTopic = b.quarantine
		}
	}
	return relay.Config{Sources: sources, Pulsar: relay.PulsarConfig{URL: b.ServiceURL, AdminURL: b.AdminURL}}
}

// runningRelay is a relay running in the test's process.
type runningRelay struct {
	*relay.Relay
	*testrun.Background // Run's
	http                *httptest.Server
}

// stop ends the relay as a crash would, from the broker's and Postgres's
// point of view: nothing is flushed or confirmed on the way out.
func (r *runningRelay) stop(t *testing.T) error {
	t.Helper()
	return r.StopWithin(t, "relay", waitTimeout)
}

func startRelay(t testing.TB, b *testBroker, sources ...relay.SourceConfig) *runningRelay {
	t.Helper()
	return startRelayWith(t, b.config(sources...))
}

// startRelayWith runs a relay configured by cfg (logging into the test
// unless cfg has a logger).
func startRelayWith(t testing.TB, cfg relay.Config) *runningRelay {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testlog.New(t)
	}
	r, err := relay.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rr := &runningRelay{Relay: r, Background: testrun.Go(t, r.Run), http: httptest.NewServer(r.Handler())}
	t.Cleanup(func() {
		rr.Stop()
		rr.http.Close()
	})
	return rr
}

// startStreamingRelay starts a relay and waits until it streams every source.
func startStreamingRelay(t *testing.T, b *testBroker, sources ...relay.SourceConfig) *runningRelay {
	t.Helper()
	r := startRelay(t, b, sources...)
	r.waitState(t, relay.StateStreaming)
	return r
}

// waitState waits until every source is in state.
func (r *runningRelay) waitState(t testing.TB, state string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		all := true
		for _, l := range r.Lag() {
			all = all && l.State == state
		}
		if all {
			return
		}
		select {
		case <-r.Done():
			t.Fatalf("relay stopped while waiting for %s: %v; lag: %+v", state, r.Err(), r.Lag())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("relay not %s after %s: %+v", state, waitTimeout, r.Lag())
		}
	}
}

// insertEvents inserts n outbox rows for topic and aggregate key in one
// transaction per row, each payload "<key>/<i>" so consumers can check
// per-key order.
func insertEvents(ctx context.Context, t *testing.T, pool *pgxpool.Pool, topic, key string, from, n int) []string {
	t.Helper()
	ids := make([]string, 0, n)
	for i := from; i < from+n; i++ {
		id := uuid.NewString()
		_, err := pool.Exec(ctx,
			`INSERT INTO outbox (id, topic, aggregate_id, type, payload) VALUES ($1, $2, $3, 'alpes.test.v1.Probe', $4)`,
			id, topic, key, []byte(fmt.Sprintf("%s/%d", key, i)))
		if err != nil {
			t.Errorf("inserting event %d for %s: %v", i, key, err)
			return ids
		}
		ids = append(ids, id)
	}
	return ids
}

// received is what a test consumer saw.
type received struct {
	mu       sync.Mutex
	byID     map[string]int // event id → deliveries
	payloads map[string][]string
	msgs     []pulsar.Message
}

// consume subscribes to topic from the earliest message and records every
// message until the test ends.
func consume(t *testing.T, brokerURL, topic string) *received {
	t.Helper()
	consumer, err := brokertest.NewClient(t, brokerURL).Subscribe(pulsar.ConsumerOptions{
		Topic:                       topic,
		SubscriptionName:            "test-" + brokertest.UniqueName(t),
		Type:                        pulsar.Exclusive,
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest,
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := &received{byID: map[string]int{}, payloads: map[string][]string{}}
	brokertest.Consume(t, consumer, func(msg pulsar.Message) {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		rec.byID[msg.Properties()[eventmeta.EventID]]++
		rec.payloads[msg.Key()] = append(rec.payloads[msg.Key()], string(msg.Payload()))
		rec.msgs = append(rec.msgs, msg)
	})
	return rec
}

// ordersToBroker is how most tests begin: a database of orders, the test's
// broker, and a consumer recording the test's topic from its start, before
// any relay runs.
func ordersToBroker(t *testing.T) (*pgtest.DB, *testBroker, *received) {
	t.Helper()
	db := pgtest.New(t, "orders")
	broker := startBroker(t)
	return db, broker, consume(t, broker.ServiceURL, broker.topic)
}

// waitFor polls cond until it holds or waitTimeout passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	pgtest.WaitFor(t, waitTimeout, what, cond)
}

// count returns the number of distinct event ids and of deliveries.
func (r *received) count() (distinct, total int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.byID {
		total += n
	}
	return len(r.byID), total
}

// batched returns how many messages arrived in an entry with others.
func (r *received) batched() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs {
		if m.ID().BatchSize() > 1 {
			n++
		}
	}
	return n
}

// assertExactlyOnce checks that every id arrived exactly once and nothing else did.
func (r *received) assertExactlyOnce(t *testing.T, ids []string) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
		if n := r.byID[id]; n != 1 {
			t.Errorf("event %s delivered %d times", id, n)
		}
	}
	for id, n := range r.byID {
		if !want[id] {
			t.Errorf("unexpected event %s delivered %d times", id, n)
		}
	}
}

// assertPerKeyOrder checks each key's payloads arrived as <key>/0, <key>/1, ….
func (r *received) assertPerKeyOrder(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for key, payloads := range r.payloads {
		for i, p := range payloads {
			if want := fmt.Sprintf("%s/%d", key, i); p != want {
				t.Errorf("key %s: message %d is %q, want %q", key, i, p, want)
				break
			}
		}
	}
}

func lagOf(t *testing.T, r *runningRelay, source string) relay.SourceLag {
	t.Helper()
	for _, l := range r.Lag() {
		if l.Source == source {
			return l
		}
	}
	t.Fatalf("no lag for source %s", source)
	return relay.SourceLag{}
}
