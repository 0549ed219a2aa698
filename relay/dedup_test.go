package relay_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alpes/alpes/broker/brokertest"
	"github.com/alpes/alpes/internal/pgtest"
	"github.com/alpes/alpes/migrations"
	"github.com/alpes/alpes/relay"
)

// The relay verifies deduplication through the admin API before it
// publishes to a topic (docs/relay.md). These tests run on both brokers.

// TestRelayStopsASourceWhoseNamespaceDoesNotDeduplicate: a row for a
// namespace without deduplication stops the source with one line naming the
// namespace and the fix, before anything is published there; once
// deduplication is on, a new relay publishes the row exactly once.
func TestRelayStopsASourceWhoseNamespaceDoesNotDeduplicate(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t, "orders")
	broker := startBroker(t)
	off := broker.namespaceWithoutDedup(t)
	topic := "persistent://" + off + "/events.v1"
	r := startStreamingRelay(t, broker, broker.source(db))
	ids := insertEvents(ctx, t, db.PoolAs(t, migrations.ServiceRole("orders")), topic, "order-1", 0, 1)

	err := waitStopped(t, r)
	want := "deduplication is off for namespace " + off + ": a restarted relay would publish duplicates; enable it with `pulsar-admin namespaces set-deduplication " + off + " --enable`"
	if !errors.Is(err, relay.ErrDeduplicationOff) || !errors.Is(err, relay.ErrSourcesLost) || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
		t.Errorf("Run returned %q, want one line wrapping ErrDeduplicationOff with %q", err, want)
	}
	if l := lagOf(t, r, "orders"); l.State != relay.StateStopped || l.MessagesPublished != 0 || !strings.Contains(l.Error, want) {
		t.Errorf("lag of the stopped source: %+v", l)
	}

	if err := broker.Admin().SetNamespaceDeduplication(ctx, off, true); err != nil {
		t.Fatal(err)
	}
	rec := consume(t, broker.ServiceURL, topic)
	startStreamingRelay(t, broker, broker.source(db))
	waitFor(t, "the row published once deduplication is on", func() bool { n, _ := rec.count(); return n >= 1 })
	rec.assertExactlyOnce(t, ids)
}

// TestRelayRefusesToStreamWhenTheQuarantineDoesNotDeduplicate: the
// quarantine topic's namespace is verified before the source streams.
func TestRelayRefusesToStreamWhenTheQuarantineDoesNotDeduplicate(t *testing.T) {
	db := pgtest.New(t, "orders")
	broker := startBroker(t)
	ns := strings.TrimPrefix(broker.quarantine[:strings.LastIndex(broker.quarantine, "/")], "persistent://")
	if err := broker.Admin().SetNamespaceDeduplication(context.Background(), ns, false); err != nil {
		t.Fatal(err)
	}
	r := startRelay(t, broker, broker.source(db))
	err := waitStopped(t, r)
	if !errors.Is(err, relay.ErrDeduplicationOff) || !strings.Contains(err.Error(), "namespace "+ns+":") {
		t.Errorf("Run returned %v, want deduplication off for namespace %s", err, ns)
	}
}

// TestRelayTakesTheBrokerDefaultForANamespaceWithoutPolicy: a namespace
// without a policy of its own deduplicates as the broker does by default
// (brokerDeduplicationEnabled; alpes runs Pulsar with it on).
func TestRelayTakesTheBrokerDefaultForANamespaceWithoutPolicy(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t, "orders")
	broker := startBroker(t)
	plain := broker.Namespace(t)
	if err := broker.Admin().RemoveNamespaceDeduplication(ctx, plain); err != nil {
		t.Fatal(err)
	}
	topic := "persistent://" + plain + "/events.v1"
	rec := consume(t, broker.ServiceURL, topic)
	startStreamingRelay(t, broker, broker.source(db))
	ids := insertEvents(ctx, t, db.PoolAs(t, migrations.ServiceRole("orders")), topic, "order-1", 0, 3)
	waitFor(t, "3 events", func() bool { n, _ := rec.count(); return n >= 3 })
	rec.assertExactlyOnce(t, ids)
}

// TestRelayStopsWhenTheBrokerDefaultIsOff: with no namespace policy and a
// broker that does not deduplicate by default, the line says so. The
// shared real Pulsar deduplicates by default, so this runs embedded only.
func TestRelayStopsWhenTheBrokerDefaultIsOff(t *testing.T) {
	db := pgtest.New(t, "orders")
	cfg := brokertest.EmbeddedConfig()
	cfg.Deduplication = false
	broker := withTopics(t, brokertest.StartEmbedded(t, cfg))
	ns := strings.TrimPrefix(broker.quarantine[:strings.LastIndex(broker.quarantine, "/")], "persistent://")
	if err := broker.Admin().RemoveNamespaceDeduplication(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	err := waitStopped(t, startRelay(t, broker, broker.source(db)))
	if !errors.Is(err, relay.ErrDeduplicationOff) || !strings.Contains(err.Error(), "namespace "+ns+" (no policy of its own, and the broker's brokerDeduplicationEnabled is false)") {
		t.Errorf("Run returned %v", err)
	}
}

// TestRelayStopsWhenATopicPolicyTurnsDeduplicationOff: a topic's own policy
// wins over its namespace's.
func TestRelayStopsWhenATopicPolicyTurnsDeduplicationOff(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t, "orders")
	broker := startBroker(t)
	admin := broker.Admin()
	if err := admin.CreateTopic(ctx, broker.topic); err != nil {
		t.Fatal(err)
	}
	if err := admin.SetTopicDeduplication(ctx, broker.topic, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the topic policy applied", func() bool { // Pulsar applies it asynchronously
		d, err := admin.TopicDeduplication(ctx, broker.topic)
		return err == nil && d.Level == "topic" && !d.Enabled
	})
	r := startStreamingRelay(t, broker, broker.source(db))
	insertEvents(ctx, t, db.PoolAs(t, migrations.ServiceRole("orders")), broker.topic, "order-1", 0, 1)
	err := waitStopped(t, r)
	if !errors.Is(err, relay.ErrDeduplicationOff) || !strings.Contains(err.Error(), "pulsar-admin topics set-deduplication "+broker.topic+" --enable") {
		t.Errorf("Run returned %v", err)
	}
}

// TestAllowNoDedupPublishesWithAWarning: with the override the relay
// publishes to a namespace without deduplication, and says so.
func TestAllowNoDedupPublishesWithAWarning(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t, "orders")
	broker := startBroker(t)
	off := broker.namespaceWithoutDedup(t)
	topic := "persistent://" + off + "/events.v1"
	rec := consume(t, broker.ServiceURL, topic)
	logs := &capturedLog{t: t}
	cfg := broker.config(broker.source(db))
	cfg.AllowNoDedup, cfg.Logger = true, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r := startRelayWith(t, cfg)
	r.waitState(t, relay.StateStreaming)
	ids := insertEvents(ctx, t, db.PoolAs(t, migrations.ServiceRole("orders")), topic, "order-1", 0, 3)
	waitFor(t, "3 events", func() bool { n, _ := rec.count(); return n >= 3 })
	rec.assertExactlyOnce(t, ids)
	for _, want := range []string{"(Config.AllowNoDedup): publishing to namespaces without deduplication too", "deduplication is off for namespace " + off} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log lacks %q", want)
		}
	}
}

// waitStopped waits for the relay's Run to return, as it does once its only
// source has stopped, and returns its error.
func waitStopped(t *testing.T, r *runningRelay) error {
	t.Helper()
	select {
	case <-r.Done():
		return r.Err()
	case <-time.After(waitTimeout):
		t.Fatalf("the relay kept running: %+v", r.Lag())
		return nil
	}
}

// capturedLog keeps what is logged, and logs it into the test too.
type capturedLog struct {
	t   *testing.T
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *capturedLog) Write(p []byte) (int, error) {
	c.t.Log(string(p))
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

func (c *capturedLog) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}
