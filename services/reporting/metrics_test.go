package reporting_test

import (
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/alpes/alpes/internal/metrics/metricstest"
)

// TestServesMetricsAndReadiness: reporting, running, is ready once its
// consumer is subscribed; after applying an event and serving requests its
// /metrics serves the runtime's families, its Pulsar client's, its request
// latencies by route pattern and code, and its inbox counts and
// latencies; with its database gone, /readyz answers 503.
func TestServesMetricsAndReadiness(t *testing.T) {
	e := newEnv(t)
	e.waitFor("reporting ready", func() bool {
		resp := e.get("/readyz")
		return resp.StatusCode == http.StatusOK
	})
	s := newStory(time.Now().Add(-time.Minute), 1000)
	e.publisher().publish(s.placed())
	topic := orderEvents.topic(e.topics)
	var fams metricstest.Families
	e.waitFor("the apply observed", func() bool {
		fams = metricstest.Scrape(e.t, e.baseURL+"/metrics", "")
		n, _ := fams.Value("alpes_reporting_inbox_commit_to_apply_seconds", "topic", topic)
		return n == 1
	})
	if resp := e.get("/v1/orders/" + s.order + "/timeline"); resp.StatusCode != http.StatusOK {
		t.Errorf("timeline: %d", resp.StatusCode)
	}
	if resp := e.get("/v1/reports/orders?format=csv"); resp.StatusCode != http.StatusOK {
		t.Errorf("report: %d", resp.StatusCode)
	}

	fams = metricstest.Scrape(t, e.baseURL+"/metrics", "")
	fams.Require(t, metricstest.Runtime)
	fams.Require(t, metricstest.PulsarClient)
	fams.Require(t, map[string]dto.MetricType{
		"alpes_reporting_http_request_duration_seconds": dto.MetricType_HISTOGRAM,
		"alpes_reporting_reports_total":                 dto.MetricType_COUNTER,
		"alpes_reporting_events_applied_total":          dto.MetricType_COUNTER,
		"alpes_reporting_events_duplicate_total":        dto.MetricType_COUNTER,
		"alpes_reporting_inbox_apply_duration_seconds":  dto.MetricType_HISTOGRAM,
		"alpes_reporting_inbox_commit_to_apply_seconds": dto.MetricType_HISTOGRAM,
		"alpes_reporting_inbox_lag_seconds":             dto.MetricType_GAUGE,
	})
	for _, route := range []string{"/v1/orders/{id}/timeline", "/v1/reports/orders"} {
		if n, _ := fams.Value("alpes_reporting_http_request_duration_seconds", "route", route, "code", "200"); n != 1 {
			t.Errorf("requests of route %s observed: %v, want 1", route, n)
		}
	}
	if lag, ok := fams.Value("alpes_reporting_inbox_lag_seconds", "topic", topic); !ok || lag < 1 {
		t.Errorf("lag on %s: %v (found %v), want the placed event's age", topic, lag, ok)
	}

	e.app.Close()
	if resp := e.get("/readyz"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the database gone: %d, want 503", resp.StatusCode)
	}
}
