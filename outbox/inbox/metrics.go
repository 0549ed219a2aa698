package inbox

import (
	"github.com/prometheus/client_golang/prometheus"
)

// RegisterMetrics registers, in reg, counters that read a consumer's Stats
// when scraped, named alpes_<service>_events_<what>_total and
// alpes_<service>_inbox_<what>: what was applied, the redeliveries the
// inbox absorbed as duplicates, what was parked or dead-lettered, the
// retries, and the sweep's work.
func RegisterMetrics(reg prometheus.Registerer, service string, stats func() Stats) {
	prefix := "alpes_" + service + "_"
	counter := func(name, help string, f func(Stats) int64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: prefix + name, Help: help},
			func() float64 { return float64(f(stats())) }))
	}
	counter("events_applied_total", "Events applied by a handler.", func(s Stats) int64 { return s.Applied })
	counter("events_skipped_total", "Events of a type the service does not handle, recorded and skipped.", func(s Stats) int64 { return s.Skipped })
	counter("events_duplicate_total", "Redelivered events the inbox dropped.", func(s Stats) int64 { return s.Duplicates })
	counter("events_parked_total", "Events parked in parked_messages.", func(s Stats) int64 { return s.Parked })
	counter("events_dead_lettered_total", "Events sent to a dead-letter topic.", func(s Stats) int64 { return s.DeadLettered })
	counter("events_retries_total", "Retries of an event after its handler failed.", func(s Stats) int64 { return s.Retries })
	counter("events_db_retries_total", "Retries of a run of events after a transient database error.", func(s Stats) int64 { return s.DBRetries })
	counter("inbox_swept_total", "Inbox rows deleted by the sweep.", func(s Stats) int64 { return s.Swept })
	counter("inbox_sweep_failures_total", "Sweeps that failed.", func(s Stats) int64 { return s.SweepFailures })
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: prefix + "inbox_last_sweep_timestamp_seconds", Help: "When the last successful sweep finished (Unix time); 0 before the first.",
	}, func() float64 {
		if at := stats().LastSweepAt; !at.IsZero() {
			return float64(at.UnixNano()) / 1e9
		}
		return 0
	}))
}
