package reporting

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/alpes/alpes/outbox/inbox"
)

// metrics are the service's Prometheus metrics, in a registry of its own
// (never the global one), served at /metrics. Safe for concurrent use.
type metrics struct {
	http.Handler
	reports *prometheus.CounterVec
	rows    *prometheus.CounterVec
}

// newMetrics registers the report counters and, when c is not nil, the
// consumer's counts.
func newMetrics(c *inbox.Consumer) *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{
		Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}),
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "alpes_reporting_reports_total", Help: "Reports served, by format and result (ok or error).",
		}, []string{"format", "result"}),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "alpes_reporting_report_rows_total", Help: "Rows written into reports, by format.",
		}, []string{"format"}),
	}
	reg.MustRegister(m.reports, m.rows, collectors.NewGoCollector())
	if c != nil {
		inbox.RegisterMetrics(reg, "reporting", c.Stats)
	}
	return m
}

// report counts one report of format with its rows and result.
func (m *metrics) report(format string, rows int, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.reports.WithLabelValues(format, result).Inc()
	m.rows.WithLabelValues(format).Add(float64(rows))
}
