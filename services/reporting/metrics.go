package reporting

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/alpes/alpes/internal/metrics"
	"github.com/alpes/alpes/outbox/inbox"
)

// serviceMetrics are the service's Prometheus metrics, in the process's
// registry (Config.Metrics; never the global one), served at /metrics.
// Safe for concurrent use.
type serviceMetrics struct {
	http.Handler
	// durations observes every request's latency by route and code.
	durations func(http.Handler) http.Handler
	reports   *prometheus.CounterVec
	rows      *prometheus.CounterVec
}

// newMetrics registers, in reg, the report counters, the HTTP request
// histogram and, when c is not nil, the consumer's metrics (with its lag
// read from q).
func newMetrics(reg *prometheus.Registry, c *inbox.Consumer, q inbox.Querier) (*serviceMetrics, error) {
	m := &serviceMetrics{
		Handler: metrics.Handler(reg),
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "alpes_reporting_reports_total", Help: "Reports served, by format and result (ok or error).",
		}, []string{"format", "result"}),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "alpes_reporting_report_rows_total", Help: "Rows written into reports, by format.",
		}, []string{"format"}),
	}
	if err := reg.Register(m.reports); err != nil {
		return nil, fmt.Errorf("registering the report counters: %w", err)
	}
	if err := reg.Register(m.rows); err != nil {
		return nil, fmt.Errorf("registering the report counters: %w", err)
	}
	m.durations = metrics.HTTPDurations(reg, "alpes_reporting_")
	if c != nil {
		if err := c.RegisterMetrics(reg, q); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// report counts one report of format with its rows and result.
func (m *serviceMetrics) report(format string, rows int, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.reports.WithLabelValues(format, result).Inc()
	m.rows.WithLabelValues(format).Add(float64(rows))
}
