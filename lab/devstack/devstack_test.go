package devstack_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	pulsarlog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/jackc/pgx/v5"

	"github.com/alpes/alpes/broker/brokertest"
	"github.com/alpes/alpes/internal/pgcluster"
	"github.com/alpes/alpes/lab/devstack"
	"github.com/alpes/alpes/lab/loadgen"
	"github.com/alpes/alpes/lab/stack/stacktest"
	"github.com/alpes/alpes/migrations"
	"github.com/alpes/alpes/services/eventcatalog"
)

// stackConfig is the stack of a test on free ports, on the embedded broker,
// or, on a real-Pulsar run (broker/brokertest), on the shared Pulsar
// under a tenant of the test's own.
func stackConfig(t *testing.T, out *stacktest.SyncBuffer) devstack.Config {
	cfg := devstack.Config{
		Out: out, BrokerAddr: "127.0.0.1:0", BrokerAdminAddr: "127.0.0.1:0",
		RelayHTTPAddr: "127.0.0.1:0", OrdersAddr: "127.0.0.1:0", PaymentsAddr: "127.0.0.1:0",
		ReportingAddr: "127.0.0.1:0", BFFAddr: "127.0.0.1:0",
	}
	if brokertest.Real() {
		b := brokertest.Start(t)
		cfg.PulsarURL, cfg.PulsarAdminURL, cfg.Tenant = b.ServiceURL, b.AdminURL, "t-"+brokertest.UniqueName(t)
	}
	return cfg
}

// TestRunServesMigratedDatabasesAndCleansUp runs the stack as `alpes dev`
// does, checks every service database is there and migrated and that the
// relay carries each producer's outbox to the broker, then stops it.
func TestRunServesMigratedDatabasesAndCleansUp(t *testing.T) {
	if _, err := pgcluster.FindBinDir(); err != nil && testing.Short() {
		t.Skipf("skipping under -short: %v", err)
	}
	ctx := context.Background()
	out := &stacktest.SyncBuffer{}
	cfg := stackConfig(t, out)
	dev := stacktest.Go(t, func(ctx context.Context) error { return devstack.Run(ctx, cfg) })
	dev.WaitForOutput(t, out, "Ctrl-C", 2*time.Minute)

	for _, service := range migrations.Services {
		dsn := findDSN(t, out.String(), "postgres://"+migrations.ServiceRole(service)+"@")
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatalf("%s: connecting with the printed DSN %s: %v", service, dsn, err)
		}
		var n int
		err = conn.QueryRow(ctx, `SELECT count(*) FROM inbox`).Scan(&n)
		conn.Close(ctx)
		if err != nil {
			t.Errorf("%s: reading the inbox as the service login: %v", service, err)
		}
	}

	// The relay streams the producers' outboxes to the broker.
	pc, err := pulsar.NewClient(pulsar.ClientOptions{
		URL:    findDSN(t, out.String(), "pulsar://"),
		Logger: pulsarlog.NewLoggerWithSlog(slog.New(slog.DiscardHandler)),
	})
	if err != nil {
		t.Fatal(err)
	}
	tenant := cfg.Tenant
	if tenant == "" {
		tenant = eventcatalog.DefaultTenant
	}
	// A topic of its own in a namespace the stack created (a real Pulsar
	// knows no namespace nobody created).
	topic := "persistent://" + tenant + "/orders/smoke.v1"
	reader, err := pc.CreateReader(pulsar.ReaderOptions{Topic: topic, StartMessageID: pulsar.EarliestMessageID()})
	if err != nil {
		t.Fatal(err)
	}
	for _, service := range migrations.Producers {
		conn, err := pgx.Connect(ctx, findDSN(t, out.String(), "postgres://"+migrations.ServiceRole(service)+"@"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = conn.Exec(ctx, `INSERT INTO outbox (id, topic, aggregate_id, type, payload) VALUES (gen_random_uuid(), $1, $2, 'alpes.dev.v1.Smoke', 'x')`, topic, service)
		conn.Close(ctx)
		if err != nil {
			t.Fatalf("%s: writing the outbox: %v", service, err)
		}
	}
	seen := map[string]bool{}
	for len(seen) < len(migrations.Producers) {
		rctx, rcancel := context.WithTimeout(ctx, time.Minute)
		msg, err := reader.Next(rctx)
		rcancel()
		if err != nil {
			t.Fatalf("waiting for the outbox rows on %s (seen %v): %v", topic, seen, err)
		}
		seen[msg.Key()] = true
	}

	// The whole flow through the front door: the bff accepts an order, and
	// its long poll returns the outcome that orders and payments decided.
	bffURL := urlAfter(t, out.String(), "Public API (bff):")
	req, _ := http.NewRequest(http.MethodPost, bffURL+"/v1/orders", strings.NewReader(
		`{"customer_id":"c-1","address":"Alpenweg 1, Zermatt","items":[{"sku":"AXE-ICE-50","quantity":2}]}`))
	req.Header.Set("Idempotency-Key", "devstack-test-1")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var accepted struct {
		OrderID string `json:"order_id"`
		Status  string `json:"status"`
	}
	json.NewDecoder(resp.Body).Decode(&accepted)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || accepted.Status != "pending" {
		t.Fatalf("POST /v1/orders: %d %+v", resp.StatusCode, accepted)
	}
	orderID := accepted.OrderID
	var view struct {
		Status string `json:"status"`
	}
	for view.Status != "confirmed" {
		resp, err := http.Get(bffURL + "/v1/orders/" + orderID + "?wait=10s")
		if err != nil {
			t.Fatal(err)
		}
		json.NewDecoder(resp.Body).Decode(&view)
		resp.Body.Close()
		if view.Status == "rejected" {
			t.Fatalf("order %s rejected", orderID)
		}
	}

	// The fake-data client: every order it places reaches its outcome.
	sum, err := loadgen.Run(ctx, loadgen.Config{BFFURL: bffURL, Rate: 20, Count: 20, OutcomeWait: time.Minute})
	if err != nil || sum.Accepted != 20 || sum.Confirmed+sum.Rejected != 20 {
		t.Fatalf("client: %+v, %v", sum, err)
	}

	// The bff's replication view reaches the relay.
	var replication struct {
		Relays []struct {
			Error   string `json:"error"`
			Sources []any  `json:"sources"`
		} `json:"relays"`
		Consumers []struct {
			Service string `json:"service"`
			Error   string `json:"error"`
			Topics  []any  `json:"topics"`
		} `json:"consumers"`
	}
	resp, err = http.Get(bffURL + "/v1/replication")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&replication)
	resp.Body.Close()
	if len(replication.Relays) != 1 || replication.Relays[0].Error != "" || len(replication.Relays[0].Sources) != 3 {
		t.Errorf("GET /v1/replication: relays %+v", replication.Relays)
	}
	services := map[string]bool{}
	for _, c := range replication.Consumers {
		if c.Error != "" || len(c.Topics) == 0 {
			t.Errorf("GET /v1/replication: consumer %+v", c)
		}
		services[c.Service] = true
	}
	for _, want := range []string{"bff", "orders", "payments", "reporting"} {
		if !services[want] {
			t.Errorf("GET /v1/replication: no applied lag of %s (%+v)", want, replication.Consumers)
		}
	}

	// Reporting's timeline of the order ends confirmed too.
	base := urlAfter(t, out.String(), "Reports:")
	base = base[:strings.Index(base, "/v1/")]
	var timeline struct {
		Status  string `json:"status"`
		Entries []any  `json:"entries"`
	}
	dev.WaitUntil(t, "order "+orderID+"'s timeline in reporting to end confirmed", time.Minute, func() bool {
		resp, err := http.Get(base + "/v1/orders/" + orderID + "/timeline")
		if err != nil {
			t.Fatal(err)
		}
		json.NewDecoder(resp.Body).Decode(&timeline)
		resp.Body.Close()
		return timeline.Status == "confirmed" && len(timeline.Entries) >= 3
	})

	// Close the client while the broker is up: closing it later would wait
	// out its operation timeout.
	reader.Close()
	pc.Close()

	dev.Cancel()
	select {
	case <-dev.Done():
		if err := dev.Err(); err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Run did not return within a minute of cancellation")
	}
}

func findDSN(t *testing.T, out, prefix string) string {
	t.Helper()
	for _, field := range strings.Fields(out) {
		if strings.HasPrefix(field, prefix) {
			return field
		}
	}
	t.Fatalf("no DSN starting with %s in output:\n%s", prefix, out)
	return ""
}

// urlAfter returns the first URL printed after label.
func urlAfter(t *testing.T, out, label string) string {
	t.Helper()
	i := strings.Index(out, label)
	if i < 0 {
		t.Fatalf("no %q in output:\n%s", label, out)
	}
	fields := strings.Fields(out[i+len(label):])
	if len(fields) == 0 {
		t.Fatalf("nothing after %q", label)
	}
	return fields[0]
}

// TestCtrlCStopsTheStackQuicklyAndQuietly runs a stack under load, logging
// at the default level, then stops it the way Ctrl-C does. The logs say
// what starts and stops, not every request and message, and no attribute
// twice; the stop takes a few seconds without a word about reconnecting:
// the parts stop in the order they depend on one another (load, services,
// relay, broker, Postgres), so nothing is left calling a broker that has
// gone.
func TestCtrlCStopsTheStackQuicklyAndQuietly(t *testing.T) {
	out, logs := &stacktest.SyncBuffer{}, &stacktest.SyncBuffer{}
	cfg := stackConfig(t, out)
	cfg.WithClient, cfg.ClientRate = true, 20
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	dev := stacktest.Go(t, func(ctx context.Context) error { return devstack.Run(ctx, cfg) })

	dev.WaitForOutput(t, out, "Ctrl-C", 2*time.Minute)
	lag := urlAfter(t, out.String(), "Relay lag:")
	dev.WaitUntil(t, "the client's orders to flow through the relay", time.Minute, func() bool {
		var report struct {
			Sources []struct {
				Published int64 `json:"messages_published"`
			} `json:"sources"`
		}
		resp, err := http.Get(lag)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		json.NewDecoder(resp.Body).Decode(&report)
		var n int64
		for _, s := range report.Sources {
			n += s.Published
		}
		return n >= 200 // about 40 orders
	})

	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) > 30 {
		t.Errorf("%d log lines while 200 messages flowed; want lifecycle only:\n%s", len(lines), strings.Join(lines[:30], "\n"))
	}
	for _, line := range lines {
		if attr := repeatedAttr(line); attr != "" {
			t.Errorf("attribute %s twice in %q", attr, line)
		}
	}
	before := len(logs.String())
	stopped := time.Now()
	dev.Cancel()
	select {
	case <-dev.Done():
		if err := dev.Err(); err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Run did not return within a minute of Ctrl-C")
	}
	if took := time.Since(stopped); took > 5*time.Second {
		t.Errorf("stopping took %s, want a few seconds", took.Round(time.Millisecond))
	}
	if noise := logs.String()[before:]; strings.Contains(strings.ToLower(noise), "connect") {
		t.Errorf("stopping was noisy:\n%s", noise)
	}
}

// repeatedAttr returns a key=value attribute key that a text log line
// holds twice, or "".
func repeatedAttr(line string) string {
	seen := map[string]bool{}
	for _, f := range strings.Fields(line) {
		key, _, ok := strings.Cut(f, "=")
		if !ok {
			continue
		}
		if seen[key] {
			return key
		}
		seen[key] = true
	}
	return ""
}
