package inbox_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/alpes/alpes/internal/metrics"
	"github.com/alpes/alpes/internal/pgtest"
	"github.com/alpes/alpes/migrations"
	"github.com/alpes/alpes/outbox/inbox"
)

func TestServeProgressReportsAppliedLag(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t, "payments")
	if _, err := db.Pool(t).Exec(ctx, `INSERT INTO apply_progress (topic, last_event_id, last_committed_at, last_applied_at, applied_count)
		VALUES ('persistent://alpes/orders/events.v1', gen_random_uuid(), now() - interval '1500 milliseconds', now(), 42)`); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- inbox.ServeProgress(sctx, ln, "payments", db.PoolAs(t, migrations.ServiceRole("payments")),
			func(context.Context) error { return nil }, nil)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeProgress: %v", err)
		}
	}()

	resp, err := http.Get("http://" + ln.Addr().String() + "/v1/progress")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var report inbox.ProgressReport
	if err := json.NewDecoder(resp.Body).Decode(&report); err != nil {
		t.Fatal(err)
	}
	if report.Service != "payments" || len(report.Topics) != 1 {
		t.Fatalf("report %+v", report)
	}
	got := report.Topics[0]
	if got.AppliedCount != 42 || got.LagSeconds < 1.4 || got.LagSeconds > 1.6 || got.LastAppliedAt.After(time.Now()) {
		t.Errorf("topic progress %+v", got)
	}
}

// The inbox's counts, duplicates above all, are what a soak reads to show
// that re-sends were absorbed: each is served under the service's name.
func TestServeProgressServesTheInboxCounts(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	db := pgtest.New(t, "orders")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stats := func() inbox.Stats {
		return inbox.Stats{Applied: 7, Duplicates: 3, Swept: 11, LastSweepAt: time.Unix(1_700_000_000, 0)}
	}
	reg := metrics.NewRegistry()
	inbox.RegisterMetrics(reg, "orders", stats)
	done := make(chan error, 1)
	go func() {
		done <- inbox.ServeProgress(ctx, ln, "orders", db.PoolAs(t, migrations.ServiceRole("orders")),
			func(context.Context) error { return nil }, reg)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeProgress: %v", err)
		}
	}()

	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"alpes_orders_events_applied_total 7\n",
		"alpes_orders_events_duplicate_total 3\n",
		"alpes_orders_inbox_swept_total 11\n",
		"alpes_orders_inbox_last_sweep_timestamp_seconds 1.7e+09\n",
		"go_goroutines ",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
