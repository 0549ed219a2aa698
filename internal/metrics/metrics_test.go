package metrics_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-chi/chi/v5"
	dto "github.com/prometheus/client_model/go"

	"github.com/alpes/alpes/internal/metrics"
	"github.com/alpes/alpes/internal/metrics/metricstest"
)

// TestRegistryServesRuntimeAndRouteLatencies: the registry holds the Go and
// process collectors, and the HTTP histogram labels a request with its
// route pattern, never its path, and its status.
func TestRegistryServesRuntimeAndRouteLatencies(t *testing.T) {
	reg := metrics.NewRegistry()
	r := chi.NewRouter()
	r.Use(metrics.HTTPDurations(reg, "alpes_test_"))
	r.Get("/v1/things/{id}", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	r.Get("/quiet", func(http.ResponseWriter, *http.Request) {})
	r.Handle("/metrics", metrics.Handler(reg))
	srv := httptest.NewServer(r)
	defer srv.Close()

	for _, path := range []string{"/v1/things/1", "/v1/things/2", "/quiet", "/no/such/path"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	fams := metricstest.Scrape(t, srv.URL+"/metrics", "")
	fams.Require(t, metricstest.Runtime)
	fams.Require(t, map[string]dto.MetricType{
		"alpes_test_http_request_duration_seconds": dto.MetricType_HISTOGRAM,
		"promhttp_metric_handler_requests_total":   dto.MetricType_COUNTER,
	})
	for _, c := range []struct {
		route, code string
		want        float64
	}{
		{"/v1/things/{id}", "418", 2},
		{"/quiet", "200", 1},
		{metrics.UnmatchedRoute, "404", 1},
	} {
		got, ok := fams.Value("alpes_test_http_request_duration_seconds", "method", "GET", "route", c.route, "code", c.code)
		if !ok || got != c.want {
			t.Errorf("route %s code %s: %v observations (found %v), want %v", c.route, c.code, got, ok, c.want)
		}
	}
	if _, ok := fams.Value("alpes_test_http_request_duration_seconds", "route", "/v1/things/1"); ok {
		t.Error("a raw path became a route label")
	}
}
