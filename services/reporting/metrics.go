package reporting

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/alpes/alpes/services/inbox"
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
		counter := func(name, help string, f func(inbox.Stats) int64) {
			reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
				func() float64 { return float64(f(c.Stats())) }))
		}
		counter("alpes_reporting_events_applied_total", "Events applied to the read model.", func(s inbox.Stats) int64 { return s.Applied })
		counter("alpes_reporting_events_duplicate_total", "Redelivered events the inbox dropped.", func(s inbox.Stats) int64 { return s.Duplicates })
		counter("alpes_reporting_events_parked_total", "Events parked in parked_messages.", func(s inbox.Stats) int64 { return s.Parked })
		counter("alpes_reporting_events_dead_lettered_total", "Events sent to a dead-letter topic.", func(s inbox.Stats) int64 { return s.DeadLettered })
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
