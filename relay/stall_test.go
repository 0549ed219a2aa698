package relay_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/alpes/alpes/internal/faultproxy"
	"github.com/alpes/alpes/migrations"
	"github.com/alpes/alpes/relay"
)

// TestRelayStalledPastTheSenderTimeout: the relay's connections to Postgres
// go silent (a partition) for longer than wal_sender_timeout, so Postgres
// ends the walsender. When the network heals the relay reconnects and streams
// again from the slot's confirmed position: nothing is lost or doubled.
func TestRelayStalledPastTheSenderTimeout(t *testing.T) {
	ctx := context.Background()
	cluster, adminDSN := ownCluster(t, "orders", "wal_sender_timeout = '2s'")
	admin, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)

	broker := startBroker(t)
	rec := consume(t, broker.ServiceURL, broker.topic)
	proxy := faultproxy.New(t, fmt.Sprintf("127.0.0.1:%d", cluster.Port()))
	dsn := strings.Replace(cluster.DSN(migrations.RelayRole, "orders"), fmt.Sprintf("127.0.0.1:%d", cluster.Port()), proxy.Addr(), 1)
	r := startStreamingRelay(t, broker, relay.SourceConfig{Name: "orders", DSN: dsn})

	writer, err := pgx.Connect(ctx, cluster.DSN(migrations.ServiceRole("orders"), "orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close(ctx)
	insert := func(from, n int) (ids []string) {
		for i := from; i < from+n; i++ {
			id := uuid.NewString()
			if _, err := writer.Exec(ctx, `INSERT INTO outbox (id, topic, aggregate_id, type, payload) VALUES ($1, $2, 'order-1', 'alpes.test.v1.Probe', $3)`,
				id, broker.topic, []byte(fmt.Sprintf("order-1/%d", i))); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		return ids
	}
	ids := insert(0, 20)
	waitFor(t, "20 events", func() bool { _, n := rec.count(); return n >= 20 })

	if err := proxy.SetMode(faultproxy.Blackhole); err != nil {
		t.Fatal(err)
	}
	ids = append(ids, insert(20, 20)...)
	waitFor(t, "Postgres to end the silent walsender", func() bool {
		var streaming bool
		admin.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_stat_replication)`).Scan(&streaming)
		return !streaming
	})
	if err := proxy.SetMode(faultproxy.Pass); err != nil {
		t.Fatal(err)
	}
	ids = append(ids, insert(40, 20)...)
	waitFor(t, "60 events", func() bool { distinct, _ := rec.count(); return distinct >= 60 })
	r.waitState(t, relay.StateStreaming)
	rec.assertExactlyOnce(t, ids)
	rec.assertPerKeyOrder(t)
	// The ended session is counted (/v1/lag and alpes_relay_session_failures_total).
	if n := r.Lag()[0].SessionFailures; n < 1 {
		t.Errorf("session failures %d after Postgres ended the walsender, want at least 1", n)
	}
}
