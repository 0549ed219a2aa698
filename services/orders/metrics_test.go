package orders_test

import (
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/alpes/alpes/internal/metrics/metricstest"
	"github.com/alpes/alpes/migrations"
)

// TestProcessServesMetricsAndReadiness: orders, run as its command runs
// it, is ready once subscribed; after applying an event its /metrics
// serves the runtime's families, its Pulsar client's, its inbox counts and
// latencies; with its database gone, /readyz answers 503.
func TestProcessServesMetricsAndReadiness(t *testing.T) {
	e := newEnv(t)
	pool := e.DB.PoolAs(t, migrations.ServiceRole("orders")) // the service's own, closed below
	p := e.StartProcess("orders", pool)
	e.WaitFor("orders ready", func() bool { return e.Status(p.URL+"/readyz") == http.StatusOK })
	e.send(placeOrder("cust-1", "AXE-ICE-50", 1))
	var fams metricstest.Families
	e.WaitFor("the apply observed", func() bool {
		fams = metricstest.Scrape(t, p.URL+"/metrics", "")
		n, _ := fams.Value("alpes_orders_inbox_commit_to_apply_seconds", "topic", e.Topics.OrderCommands)
		return n == 1
	})
	fams.Require(t, metricstest.Runtime)
	fams.Require(t, metricstest.PulsarClient)
	fams.Require(t, map[string]dto.MetricType{
		"alpes_orders_events_applied_total":          dto.MetricType_COUNTER,
		"alpes_orders_events_duplicate_total":        dto.MetricType_COUNTER,
		"alpes_orders_inbox_apply_duration_seconds":  dto.MetricType_HISTOGRAM,
		"alpes_orders_inbox_commit_to_apply_seconds": dto.MetricType_HISTOGRAM,
		"alpes_orders_inbox_lag_seconds":             dto.MetricType_GAUGE,
	})
	if n, _ := fams.Value("alpes_orders_events_applied_total"); n != 1 {
		t.Errorf("events applied: %v, want 1", n)
	}

	pool.Close()
	if code := e.Status(p.URL + "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the database gone: %d, want 503", code)
	}
	if code := e.Status(p.URL + "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz with the database gone: %d, want 200", code)
	}
}
