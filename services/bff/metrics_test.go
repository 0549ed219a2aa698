package bff

import (
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/alpes/alpes/internal/metrics/metricstest"
)

// TestServesMetricsAndReadiness: the bff, running with its view consumer,
// is ready once subscribed; after requests and an applied event its
// /metrics serves the runtime's families, its Pulsar client's, its request
// latencies by route pattern and code, and its inbox counts and
// latencies; with its database gone, /readyz answers 503 and /healthz 200.
func TestServesMetricsAndReadiness(t *testing.T) {
	e := newEnvWithBroker(t)
	if r := e.do(http.MethodGet, "/healthz", nil); r.StatusCode != http.StatusOK {
		t.Errorf("/healthz: %d", r.StatusCode)
	}
	waitFor(t, "the bff ready", func() bool { return e.do(http.MethodGet, "/readyz", nil).StatusCode == http.StatusOK })
	id := e.placeOrder("metrics")
	e.publish(e.topics().OrderEvents, id, orderPlaced(id))
	topic := e.topics().OrderEvents
	waitFor(t, "the apply observed", func() bool {
		n, _ := metricstest.Scrape(t, e.url+"/metrics", "").Value("alpes_bff_inbox_commit_to_apply_seconds", "topic", topic)
		return n == 1
	})
	if r := e.do(http.MethodGet, "/v1/orders/"+id, nil); r.StatusCode != http.StatusOK {
		t.Errorf("GET /v1/orders/%s: %d", id, r.StatusCode)
	}
	e.do(http.MethodGet, "/no/such/thing", nil)

	fams := metricstest.Scrape(t, e.url+"/metrics", "")
	fams.Require(t, metricstest.Runtime)
	fams.Require(t, metricstest.PulsarClient)
	fams.Require(t, map[string]dto.MetricType{
		"alpes_bff_http_request_duration_seconds": dto.MetricType_HISTOGRAM,
		"alpes_bff_events_applied_total":          dto.MetricType_COUNTER,
		"alpes_bff_events_duplicate_total":        dto.MetricType_COUNTER,
		"alpes_bff_inbox_apply_duration_seconds":  dto.MetricType_HISTOGRAM,
		"alpes_bff_inbox_commit_to_apply_seconds": dto.MetricType_HISTOGRAM,
		"alpes_bff_inbox_lag_seconds":             dto.MetricType_GAUGE,
	})
	for _, c := range []struct{ method, route, code string }{
		{"POST", "/v1/orders", "202"},
		{"GET", "/v1/orders/{id}", "200"},
		{"GET", "unmatched", "404"},
	} {
		if n, _ := fams.Value("alpes_bff_http_request_duration_seconds", "method", c.method, "route", c.route, "code", c.code); n < 1 {
			t.Errorf("%s %s %s: no observation", c.method, c.route, c.code)
		}
	}

	e.app.Close()
	if r := e.do(http.MethodGet, "/readyz", nil); r.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the database gone: %d, want 503", r.StatusCode)
	}
	if r := e.do(http.MethodGet, "/healthz", nil); r.StatusCode != http.StatusOK {
		t.Errorf("/healthz with the database gone: %d, want 200", r.StatusCode)
	}
}
