package inbox_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/alpes/alpes/internal/pgtest"
	"github.com/alpes/alpes/migrations"
	"github.com/alpes/alpes/services/inbox"
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
		done <- inbox.ServeProgress(sctx, ln, "payments", db.PoolAs(t, migrations.ServiceRole("payments")))
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
