package devstack_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/alpes/alpes/internal/pgcluster"
	"github.com/alpes/alpes/lab/devstack"
	"github.com/alpes/alpes/lab/loadgen"
	"github.com/alpes/alpes/lab/stack/stacktest"
)

// startStack runs the whole system in-process on free ports and returns
// what it printed once it is ready.
func startStack(t *testing.T) string {
	out, _ := startStackBackground(t)
	return out
}

// startStackBackground is startStack, also returning the running stack,
// for tests that wait on it.
func startStackBackground(t *testing.T) (string, *stacktest.Background) {
	t.Helper()
	if _, err := pgcluster.FindBinDir(); err != nil && testing.Short() {
		t.Skipf("skipping under -short: %v", err)
	}
	out := &stacktest.SyncBuffer{}
	cfg := stackConfig(t, out)
	dev := stacktest.Go(t, func(ctx context.Context) error { return devstack.Run(ctx, cfg) })
	t.Cleanup(func() {
		if err := dev.Stop(); err != nil {
			t.Errorf("the stack stopped with %v", err)
		}
	})
	return dev.WaitForOutput(t, out, "Ctrl-C", 2*time.Minute), dev
}

// TestHundredsOfOrdersEndToEnd places 300 orders concurrently through the
// bff's HTTP API with the fake-data client and checks the whole system
// afterwards: every order settled, every consumer applied every event once,
// the report lists every order, and timelines are complete and in order.
func TestHundredsOfOrdersEndToEnd(t *testing.T) {
	out, dev := startStackBackground(t)
	ctx := context.Background()
	const n = 300
	sum, err := loadgen.Run(ctx, loadgen.Config{
		BFFURL: urlAfter(t, out, "Public API (bff):"), Rate: 150, Count: n, Seed: 42, OutcomeWait: time.Minute,
	})
	if err != nil {
		t.Fatalf("client: %v (%+v)", err, sum)
	}
	if sum.Accepted != n || sum.Confirmed+sum.Rejected != n || sum.Rejected == 0 {
		t.Fatalf("client summary %+v: want %d accepted and settled, some declined", sum, n)
	}

	// Each consumer's inbox holds exactly the events it was sent, once each
	// (the inbox's key makes a second copy impossible; the counts show none
	// was lost), and the effects match.
	admin := findDSN(t, out, "postgres://postgres@")
	query := func(db, sql string) int {
		conn, err := pgx.Connect(ctx, strings.Replace(admin, "/bff?", "/"+db+"?", 1))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var v int
		if err := conn.QueryRow(ctx, sql).Scan(&v); err != nil {
			t.Fatalf("%s: %s: %v", db, sql, err)
		}
		return v
	}
	// Reporting is off the client's path: an outcome shows in the bff's view
	// without waiting for reporting, which applies the same events from a
	// subscription of its own and may be a second behind on a loaded box.
	// Wait, bounded, until it has applied as many as it was sent; an event
	// applied twice still fails the checks below.
	dev.WaitUntil(t, fmt.Sprintf("reporting's inbox to hold all %d events", 3*n), time.Minute, func() bool {
		return query("reporting", `SELECT count(*) FROM inbox`) >= 3*n
	})
	settled := int(sum.Confirmed + sum.Rejected)
	checks := []struct {
		db, sql string
		want    int
	}{
		{"orders", `SELECT count(*) FROM inbox WHERE type = 'alpes.orders.v1.PlaceOrder'`, n},
		{"orders", `SELECT count(*) FROM inbox WHERE type = 'alpes.payments.v1.PaymentProcessed'`, n},
		{"orders", `SELECT count(*) FROM orders WHERE status IN ('confirmed', 'rejected')`, n},
		{"payments", `SELECT count(*) FROM inbox WHERE type = 'alpes.orders.v1.OrderPlaced'`, n},
		{"payments", `SELECT count(*) FROM payments`, n},
		{"payments", `SELECT count(*) FROM payments WHERE status = 'declined'`, int(sum.Rejected)},
		{"reporting", `SELECT count(*) FROM inbox`, 3 * n},
		{"reporting", `SELECT count(*) FROM order_facts WHERE status IN ('confirmed', 'rejected')`, settled},
		{"reporting", `SELECT count(*) FROM timeline_entries`, 3 * n},
		{"bff", `SELECT count(*) FROM order_views WHERE status IN ('confirmed', 'rejected')`, settled},
		{"bff", `SELECT count(*) FROM outbox`, n},
	}
	for _, c := range checks {
		if got := query(c.db, c.sql); got != c.want {
			t.Errorf("%s: %s = %d, want %d", c.db, c.sql, got, c.want)
		}
	}
	for _, db := range []string{"bff", "orders", "payments", "reporting"} {
		if parked := query(db, `SELECT count(*) FROM parked_messages`); parked != 0 {
			t.Errorf("%s parked %d messages", db, parked)
		}
	}

	// The report lists every order; timelines are complete and in order.
	reports := urlAfter(t, out, "Reports:")
	base := reports[:strings.Index(reports, "/v1/")]
	var rows []struct {
		OrderID string `json:"order_id"`
		Status  string `json:"status"`
	}
	stacktest.GetJSON(t, base+"/v1/reports/orders?format=json", &rows)
	if len(rows) != n {
		t.Fatalf("the report lists %d orders, want %d", len(rows), n)
	}
	for i, row := range rows {
		if i%25 != 0 {
			continue // a sample of timelines
		}
		var tl struct {
			Status  string `json:"status"`
			Entries []struct {
				Type       string    `json:"type"`
				OccurredAt time.Time `json:"occurred_at"`
			} `json:"entries"`
		}
		stacktest.GetJSON(t, base+"/v1/orders/"+row.OrderID+"/timeline", &tl)
		var types []string
		for j, e := range tl.Entries {
			types = append(types, e.Type[strings.LastIndex(e.Type, ".")+1:])
			if j > 0 && e.OccurredAt.Before(tl.Entries[j-1].OccurredAt) {
				t.Errorf("order %s: timeline out of order at entry %d", row.OrderID, j)
			}
		}
		want := fmt.Sprintf("OrderPlaced PaymentProcessed Order%s", map[string]string{"confirmed": "Confirmed", "rejected": "Rejected"}[row.Status])
		if strings.Join(types, " ") != want {
			t.Errorf("order %s (%s): timeline %v, want %s", row.OrderID, row.Status, types, want)
		}
	}
}
