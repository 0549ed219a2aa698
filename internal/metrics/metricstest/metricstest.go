// Package metricstest reads a process's /metrics as Prometheus would, for
// tests: the families by name, each with its type, labels and values.
package metricstest

import (
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Families are a scrape's metric families by name.
type Families map[string]*dto.MetricFamily

// Scrape GETs url (a /metrics endpoint), with "Authorization: Bearer token"
// when token is not empty, and parses the text exposition. It fails the
// test on any error or a status other than 200.
func Scrape(t testing.TB, url, token string) Families {
	t.Helper()
	fams, err := scrape(url, token)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

func scrape(url, token string) (Families, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("scraping %s: %w", url, err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scraping %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("scraping %s: %s: %s", url, resp.Status, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", url, err)
	}
	return fams, nil
}

// Require fails the test for every family of want that the scrape lacks or
// holds with another type.
func (f Families) Require(t testing.TB, want map[string]dto.MetricType) {
	t.Helper()
	for name, typ := range want {
		switch fam, ok := f[name]; {
		case !ok:
			t.Errorf("no metric family %s (a %s)", name, typ)
		case fam.GetType() != typ:
			t.Errorf("metric family %s is a %s, want a %s", name, fam.GetType(), typ)
		}
	}
}

// Runtime are the families of the Go and process collectors that every
// alpes process serves (internal/metrics.NewRegistry).
var Runtime = map[string]dto.MetricType{
	"go_goroutines":                 dto.MetricType_GAUGE,
	"go_gc_duration_seconds":        dto.MetricType_SUMMARY,
	"go_memstats_heap_alloc_bytes":  dto.MetricType_GAUGE,
	"process_cpu_seconds_total":     dto.MetricType_COUNTER,
	"process_resident_memory_bytes": dto.MetricType_GAUGE,
	"process_start_time_seconds":    dto.MetricType_GAUGE,
}

// PulsarClient are families pulsar-client-go registers in the registry of
// its ClientOptions.MetricsRegisterer, present once the client has
// connected. The library's counters lack the _total suffix.
var PulsarClient = map[string]dto.MetricType{
	"pulsar_client_connections_opened": dto.MetricType_COUNTER,
	"pulsar_client_lookup_count":       dto.MetricType_COUNTER,
}

// Value returns the value of family name's sample whose labels include
// every name/value pair of labels (a counter's, gauge's or untyped
// value, a histogram's sample count), and whether there is one.
func (f Families) Value(name string, labels ...string) (float64, bool) {
	fam, ok := f[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range fam.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}
