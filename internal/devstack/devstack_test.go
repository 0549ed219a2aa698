package devstack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	pulsarlog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/alpes/alpes/internal/devstack"
	"github.com/alpes/alpes/internal/eventcatalog"
	"github.com/alpes/alpes/internal/pgcluster"
	"github.com/alpes/alpes/migrations"
	ordersv1 "github.com/alpes/alpes/proto/alpes/orders/v1"
	"github.com/alpes/alpes/services/outbox"
)

// syncBuffer is a bytes.Buffer safe to write from Run and read from the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestRunServesMigratedDatabasesAndCleansUp runs the stack as `alpes dev`
// does, checks every service database is there and migrated and that the
// relay carries each producer's outbox to the broker, then stops it.
func TestRunServesMigratedDatabasesAndCleansUp(t *testing.T) {
	if _, err := pgcluster.FindBinDir(); err != nil && testing.Short() {
		t.Skipf("skipping under -short: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- devstack.Run(ctx, devstack.Config{
			Out: out, BrokerAddr: "127.0.0.1:0", BrokerAdminAddr: "127.0.0.1:0", RelayHTTPAddr: "127.0.0.1:0", ReportingAddr: "127.0.0.1:0",
		})
	}()

	deadline := time.After(2 * time.Minute)
	for !strings.Contains(out.String(), "Ctrl-C") {
		select {
		case err := <-done:
			t.Fatalf("Run returned before it was ready: %v", err)
		case <-deadline:
			t.Fatalf("stack not ready after 2 minutes; output so far:\n%s", out)
		case <-time.After(20 * time.Millisecond):
		}
	}

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
	client, err := pulsar.NewClient(pulsar.ClientOptions{
		URL:    findDSN(t, out.String(), "pulsar://"),
		Logger: pulsarlog.NewLoggerWithSlog(slog.New(slog.DiscardHandler)),
	})
	if err != nil {
		t.Fatal(err)
	}
	const topic = "persistent://alpes/dev/smoke.v1"
	reader, err := client.CreateReader(pulsar.ReaderOptions{Topic: topic, StartMessageID: pulsar.EarliestMessageID()})
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

	// The whole flow: a PlaceOrder in the bff's outbox travels through the
	// relay, orders and payments, and reporting's timeline ends confirmed.
	orderID := uuid.Must(uuid.NewV7()).String()
	conn, err := pgx.Connect(ctx, findDSN(t, out.String(), "postgres://"+migrations.ServiceRole("bff")+"@"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = outbox.Append(ctx, conn, outbox.Message{
		Topic: eventcatalog.TopicOrderCommands, AggregateID: orderID,
		Body: &ordersv1.PlaceOrder{OrderId: orderID, CustomerId: "c-1", Address: "Alpenweg 1",
			Lines: []*ordersv1.OrderLine{{Sku: "AXE-ICE-50", Quantity: 2}}, RequestedAt: timestamppb.Now()},
	})
	conn.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var base string
	for _, field := range strings.Fields(out.String()) {
		if i := strings.Index(field, "/v1/reports/"); i > 0 {
			base = field[:i]
		}
	}
	if base == "" {
		t.Fatalf("no reporting URL in output:\n%s", out)
	}
	var timeline struct {
		Status  string `json:"status"`
		Entries []any  `json:"entries"`
	}
	deadline = time.After(time.Minute)
	for timeline.Status != "confirmed" {
		select {
		case <-deadline:
			t.Fatalf("order %s not confirmed in reporting after a minute: %+v", orderID, timeline)
		case <-time.After(50 * time.Millisecond):
		}
		resp, err := http.Get(base + "/v1/orders/" + orderID + "/timeline")
		if err != nil {
			t.Fatal(err)
		}
		json.NewDecoder(resp.Body).Decode(&timeline)
		resp.Body.Close()
	}
	if len(timeline.Entries) < 3 {
		t.Errorf("timeline of a confirmed order has %d entries, want placed, paid, confirmed", len(timeline.Entries))
	}

	// Close the client while the broker is up: closing it later would wait
	// out its operation timeout.
	reader.Close()
	client.Close()

	cancel()
	select {
	case err := <-done:
		if err != nil {
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
