package relay_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pglogrepl"

	"github.com/alpes/alpes/broker/brokertest"
	"github.com/alpes/alpes/internal/faultproxy"
	"github.com/alpes/alpes/internal/pgtest"
	"github.com/alpes/alpes/internal/pulsaradmin"
	"github.com/alpes/alpes/internal/testlog"
	"github.com/alpes/alpes/migrations"
	"github.com/alpes/alpes/outbox/eventmeta"
	"github.com/alpes/alpes/relay"
	"github.com/alpes/alpes/services/eventcatalog"
)

func getJSON(t *testing.T, url string, into any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if into != nil {
		if err := json.Unmarshal(body, into); err != nil {
			t.Fatalf("GET %s: %v in %s", url, err, body)
		}
	}
	return resp.StatusCode
}

func TestLagEndpointShowsCaughtUp(t *testing.T) {
	ctx := context.Background()
	db, broker, rec := ordersToBroker(t)
	r := startStreamingRelay(t, broker, broker.source(db))
	ids := insertEvents(ctx, t, db.PoolAs(t, migrations.ServiceRole("orders")), broker.topic, "order-1", 0, 20)
	waitFor(t, "20 events", func() bool { _, n := rec.count(); return n >= 20 })
	rec.assertExactlyOnce(t, ids)

	var report relay.LagReport
	waitFor(t, "0 bytes and 0 seconds behind", func() bool {
		getJSON(t, r.http.URL+"/v1/lag", &report)
		l := report.Sources[0]
		return l.BytesBehind == 0 && l.SecondsBehind == 0 && l.InFlight == 0
	})
	l := report.Sources[0]
	if l.State != relay.StateStreaming || l.MessagesPublished != 20 || l.LastPublishTime == nil || l.WALStatus != "reserved" || l.Slot != db.Name {
		t.Errorf("lag report: %+v", l)
	}

	var one relay.SourceLag
	if code := getJSON(t, r.http.URL+"/v1/lag/orders", &one); code != http.StatusOK || one.Source != "orders" {
		t.Errorf("GET /v1/lag/orders: %d %+v", code, one)
	}
	var problem map[string]any
	if code := getJSON(t, r.http.URL+"/v1/lag/no_such_source", &problem); code != http.StatusNotFound || problem["status"] != float64(404) {
		t.Errorf("GET /v1/lag/no_such_source: %d %v, want a 404 problem", code, problem)
	}
	if code := getJSON(t, r.http.URL+"/readyz", nil); code != http.StatusOK {
		t.Errorf("GET /readyz: %d", code)
	}
	resp, err := http.Get(r.http.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `alpes_relay_messages_published_total{source="orders"} 20`) {
		t.Errorf("/metrics lacks the published count:\n%s", metrics)
	}
}

func TestLagEndpointRequiresTheTokenWhenSet(t *testing.T) {
	r, err := relay.New(relay.Config{
		Sources:   []relay.SourceConfig{{Name: "orders", DSN: "postgres://unused"}},
		Pulsar:    relay.PulsarConfig{URL: "pulsar://unused"},
		HTTPToken: "s3cret",
	})
	if err != nil {
		t.Fatal(err)
	}
	h := r.Handler()
	for _, c := range []struct {
		path, auth string
		want       int
	}{
		{"/v1/lag", "", http.StatusUnauthorized},
		{"/v1/lag", "Bearer wrong", http.StatusUnauthorized},
		{"/v1/lag", "Bearer s3cret", http.StatusOK},
		{"/metrics", "", http.StatusUnauthorized},
		{"/healthz", "", http.StatusOK},
	} {
		req, _ := http.NewRequest(http.MethodGet, c.path, nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		w := &recorder{header: http.Header{}}
		h.ServeHTTP(w, req)
		if w.status != c.want {
			t.Errorf("GET %s with %q: %d, want %d", c.path, c.auth, w.status, c.want)
		}
	}
}

type recorder struct {
	header http.Header
	status int
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return len(b), nil
}
func (r *recorder) WriteHeader(s int) { r.status = s }

func TestStandbyTakesOverWhenTheActiveRelayDies(t *testing.T) {
	ctx := context.Background()
	db, broker, rec := ordersToBroker(t)
	writer := db.PoolAs(t, migrations.ServiceRole("orders"))

	src := broker.source(db)
	src.LockPollInterval = 100 * time.Millisecond
	active := startStreamingRelay(t, broker, src)
	standby := startRelay(t, broker, src)
	standby.waitState(t, relay.StateWaiting)

	ids := insertEvents(ctx, t, writer, broker.topic, "order-1", 0, 30)
	waitFor(t, "30 events", func() bool { _, n := rec.count(); return n >= 30 })
	if l := lagOf(t, standby, "orders"); l.State != relay.StateWaiting || l.MessagesPublished != 0 {
		t.Fatalf("the standby did not stand by: %+v", l)
	}

	if err := active.stop(t); err != nil {
		t.Fatal(err)
	}
	took := time.Now()
	standby.waitState(t, relay.StateStreaming)
	if d := time.Since(took); d > 10*time.Second {
		t.Errorf("takeover took %s", d)
	}
	ids = append(ids, insertEvents(ctx, t, writer, broker.topic, "order-1", 30, 30)...)
	waitFor(t, "60 events", func() bool { _, n := rec.count(); return n >= 60 })
	rec.assertExactlyOnce(t, ids)
	rec.assertPerKeyOrder(t)
}

func TestDroppedSlotStopsTheRelayLoudly(t *testing.T) {
	ctx := context.Background()
	db, broker, rec := ordersToBroker(t)
	r := startStreamingRelay(t, broker, broker.source(db))
	insertEvents(ctx, t, db.PoolAs(t, migrations.ServiceRole("orders")), broker.topic, "order-1", 0, 5)
	waitFor(t, "5 events", func() bool { _, n := rec.count(); return n >= 5 })

	admin := db.Pool(t)
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(active_pid, 10000) FROM pg_replication_slots WHERE slot_name = $1`, db.Name); err != nil {
		t.Fatal(err)
	}
	// The relay may reconnect before the drop; drop until it is gone.
	waitFor(t, "the slot dropped", func() bool {
		admin.Exec(ctx, `SELECT pg_terminate_backend(active_pid, 10000) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL`, db.Name)
		_, err := admin.Exec(ctx, `SELECT pg_drop_replication_slot($1)`, db.Name)
		return err == nil
	})
	select {
	case <-r.Done():
	case <-time.After(waitTimeout):
		t.Fatal("the relay kept running without its slot")
	}
	if !errors.Is(r.Err(), relay.ErrSourcesLost) || !errors.Is(r.Err(), relay.ErrSlotLost) {
		t.Errorf("Run returned %v, want ErrSourcesLost wrapping ErrSlotLost", r.Err())
	}
	if l := lagOf(t, r, "orders"); l.State != relay.StateLost {
		t.Errorf("state %q, want lost", l.State)
	}
	var exists bool
	admin.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = $1)`, db.Name).Scan(&exists)
	if exists {
		t.Error("the relay recreated the lost slot")
	}
}

func TestIdleSourceKeepsItsSlotMoving(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t, "orders")
	broker := startBroker(t)
	src := broker.source(db)
	src.HeartbeatInterval = 200 * time.Millisecond
	startStreamingRelay(t, broker, src)

	// WAL written elsewhere in the cluster must not stay pinned by this slot.
	other := pgtest.NewEmpty(t).Pool(t)
	if _, err := other.Exec(ctx, `CREATE TABLE filler AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 5000) g`); err != nil {
		t.Fatal(err)
	}
	var target string
	if err := other.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&target); err != nil {
		t.Fatal(err)
	}
	want, _ := pglogrepl.ParseLSN(target)
	// Postgres moves a slot's restart position at running-transactions
	// records, which it writes at checkpoints (and every 15 s): ask for one.
	if _, err := other.Exec(ctx, `CHECKPOINT`); err != nil {
		t.Fatal(err)
	}
	admin := db.Pool(t)
	waitFor(t, "the slot's restart and confirmed positions to pass "+target, func() bool {
		var restart, confirmed string
		admin.QueryRow(ctx, `SELECT restart_lsn::text, confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1`, db.Name).Scan(&restart, &confirmed)
		r, _ := pglogrepl.ParseLSN(restart)
		c, _ := pglogrepl.ParseLSN(confirmed)
		return r >= want && c >= want
	})
}

func TestMalformedRowsAreQuarantinedAndTheStreamGoesOn(t *testing.T) {
	ctx := context.Background()
	db, broker, rec := ordersToBroker(t)
	quarantine := consume(t, broker.ServiceURL, broker.quarantine)
	src := broker.source(db)
	src.ValidatePayload = eventcatalog.ValidatePayload
	src.MaxPayloadBytes = 1024
	startStreamingRelay(t, broker, src)

	writer := db.PoolAs(t, migrations.ServiceRole("orders"))
	bad := []struct{ topic, typ string }{
		{"not a topic", "alpes.test.v1.Probe"},
		{broker.topic, "alpes.orders.v1.OrderPlaced"}, // a known type whose payload does not decode
		{broker.topic, "alpes.test.v1.Huge"},          // over MaxPayloadBytes
	}
	payloads := [][]byte{[]byte("x"), {0xff, 0xff, 0xff}, make([]byte, 2048)}
	for i, b := range bad {
		if _, err := writer.Exec(ctx, `INSERT INTO outbox (id, topic, aggregate_id, type, payload) VALUES ($1, $2, 'order-q', $3, $4)`,
			uuid.NewString(), b.topic, b.typ, payloads[i]); err != nil {
			t.Fatal(err)
		}
	}
	ids := insertEvents(ctx, t, writer, broker.topic, "order-1", 0, 3)
	waitFor(t, "3 good events", func() bool { _, n := rec.count(); return n >= 3 })
	waitFor(t, "3 quarantined rows", func() bool { _, n := quarantine.count(); return n >= 3 })
	rec.assertExactlyOnce(t, ids)
	quarantine.mu.Lock()
	defer quarantine.mu.Unlock()
	for _, m := range quarantine.msgs {
		if m.Properties()[eventmeta.QuarantineReason] == "" || m.Properties()[eventmeta.Source] != "orders" {
			t.Errorf("quarantined message without reason or source: %v", m.Properties())
		}
	}
}

func TestOutboxAlteredMidStream(t *testing.T) {
	ctx := context.Background()
	db, broker, rec := ordersToBroker(t)
	startStreamingRelay(t, broker, broker.source(db))
	writer := db.PoolAs(t, migrations.ServiceRole("orders"))

	ids := insertEvents(ctx, t, writer, broker.topic, "order-1", 0, 10)
	admin := db.Pool(t)
	for _, ddl := range []string{
		`ALTER TABLE outbox ADD COLUMN note text DEFAULT 'added mid-stream'`,
		`ALTER TABLE outbox DROP COLUMN headers`,
		`ALTER TABLE outbox ADD COLUMN headers jsonb NOT NULL DEFAULT '{"traceparent": "00-abc-def-01"}'`,
	} {
		if _, err := admin.Exec(ctx, ddl); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, insertEvents(ctx, t, writer, broker.topic, "order-1", len(ids), 10)...)
	}
	waitFor(t, "40 events", func() bool { _, n := rec.count(); return n >= 40 })
	rec.assertExactlyOnce(t, ids)
	rec.assertPerKeyOrder(t)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if tp := rec.msgs[len(rec.msgs)-1].Properties()["traceparent"]; tp != "00-abc-def-01" {
		t.Errorf("headers after the column moved: traceparent %q", tp)
	}
}

func TestOneTransactionWith100kRows(t *testing.T) {
	if testing.Short() {
		t.Skip("100k messages: skipped under -short")
	}
	ctx := context.Background()
	db, broker, rec := ordersToBroker(t)
	src := broker.source(db)
	src.MaxInFlight = 2000
	r := startStreamingRelay(t, broker, src)

	const n = 100_000
	if _, err := db.Pool(t).Exec(ctx, `INSERT INTO outbox (id, topic, aggregate_id, type, payload)
		SELECT gen_random_uuid(), $1, 'order-' || (g % 100), 'alpes.test.v1.Probe', int4send(g) FROM generate_series(1, $2) g`, broker.topic, n); err != nil {
		t.Fatal(err)
	}
	maxInFlight := int64(0)
	// 100k unbatched messages through the race detector, next to other
	// packages' tests, take a while: allow minutes, not seconds.
	pgtest.WaitFor(t, 5*time.Minute, fmt.Sprintf("%d events", n), func() bool {
		maxInFlight = max(maxInFlight, lagOf(t, r, "orders").InFlight)
		distinct, _ := rec.count()
		return distinct >= n
	})
	if _, total := rec.count(); total != n {
		t.Errorf("%d deliveries of %d events", total, n)
	}
	if maxInFlight > int64(src.MaxInFlight) {
		t.Errorf("%d messages in flight, over the bound of %d", maxInFlight, src.MaxInFlight)
	}
	waitFor(t, "the transaction confirmed", func() bool { return lagOf(t, r, "orders").SecondsBehind == 0 })
}

// TestSourceConnectionsCutMidStream: every connection to Postgres is reset
// while rows stream; the relay reconnects and continues from its confirmed
// position, and nothing is lost or delivered twice.
func TestSourceConnectionsCutMidStream(t *testing.T) {
	ctx := context.Background()
	db, broker, rec := ordersToBroker(t)
	proxy := faultproxy.New(t, fmt.Sprintf("127.0.0.1:%d", db.Cluster().Port()))
	src := broker.source(db)
	src.DSN = strings.Replace(src.DSN, fmt.Sprintf("127.0.0.1:%d", db.Cluster().Port()), proxy.Addr(), 1)
	r := startStreamingRelay(t, broker, src)
	writer := db.PoolAs(t, migrations.ServiceRole("orders"))

	ids := insertEvents(ctx, t, writer, broker.topic, "order-1", 0, 20)
	for round := range 3 {
		if err := proxy.SetMode(faultproxy.Reset); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, insertEvents(ctx, t, writer, broker.topic, "order-1", len(ids), 20)...)
		waitFor(t, "the relay to notice", func() bool { return lagOf(t, r, "orders").State == relay.StateError })
		if err := proxy.SetMode(faultproxy.Pass); err != nil {
			t.Fatal(err)
		}
		r.waitState(t, relay.StateStreaming)
		t.Logf("round %d: relay streaming again", round)
	}
	ids = append(ids, insertEvents(ctx, t, writer, broker.topic, "order-1", len(ids), 20)...)
	waitFor(t, fmt.Sprintf("%d events", len(ids)), func() bool { distinct, _ := rec.count(); return distinct >= len(ids) })
	rec.assertExactlyOnce(t, ids)
	rec.assertPerKeyOrder(t)
}

// TestTokenAuthenticationToTheBroker: without the token the broker refuses
// the relay's producer, /v1/lag says so and nothing is confirmed; with it
// every row is published, and the admin API (deduplication) is read with it.
func TestTokenAuthenticationToTheBroker(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t, "orders")
	cfg := brokertest.EmbeddedConfig()
	cfg.AuthToken = "relay-s3cret"
	b := brokertest.StartEmbedded(t, cfg)
	// brokertest's admin client has no token: create the namespace here.
	ns := brokertest.TestTenant + "/" + brokertest.UniqueName(t)
	if err := pulsaradmin.New(b.AdminURL, cfg.AuthToken).EnsureNamespace(ctx, ns, true); err != nil {
		t.Fatal(err)
	}
	broker := &testBroker{Broker: b, topic: "persistent://" + ns + "/events.v1", quarantine: "persistent://" + ns + "/quarantine.v1"}

	// No admin URL: what refuses this relay is the broker's protocol.
	without := startRelayWith(t, relay.Config{
		Sources: []relay.SourceConfig{broker.source(db)}, Pulsar: relay.PulsarConfig{URL: broker.ServiceURL, OperationTimeout: 2 * time.Second},
	})
	without.waitState(t, relay.StateStreaming)
	insertEvents(ctx, t, db.PoolAs(t, migrations.ServiceRole("orders")), broker.topic, "order-1", 0, 5)
	waitFor(t, "the relay to fail without a token", func() bool {
		l := lagOf(t, without, "orders")
		return l.State == relay.StateError && l.Error != ""
	})
	if l := lagOf(t, without, "orders"); l.MessagesPublished != 0 {
		t.Errorf("published %d messages without a token", l.MessagesPublished)
	}
	if err := without.stop(t); err != nil {
		t.Fatal(err)
	}

	withToken := broker.config(broker.source(db))
	withToken.Pulsar.Token, withToken.Logger = "relay-s3cret", testlog.New(t)
	r, err := relay.New(withToken)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "the 5 rows published with the token", func() bool {
		return r.Lag()[0].MessagesPublished == 5
	})
}
