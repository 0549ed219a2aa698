package inbox

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RegisterMetrics registers, in reg, counters that read a consumer's Stats
// when scraped, named alpes_<service>_events_<what>_total and
// alpes_<service>_inbox_<what>: what was applied, the redeliveries the
// inbox absorbed as duplicates, what was parked or dead-lettered, the
// retries, and the sweep's work. Consumer.RegisterMetrics registers these
// and the consumer's latencies; this function is for a caller that has only
// the counts.
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

// latencies are a Consumer's histograms, observed by applyTx whether or not
// anything scrapes them.
type latencies struct {
	// apply is the duration of each committed transaction, from BEGIN to
	// the end of COMMIT, once per topic it applied messages of.
	apply *prometheus.HistogramVec
	// commitToApply is, per message applied or skipped, from its source
	// transaction's commit (eventmeta.CommitTime) to the commit that
	// applied it here.
	commitToApply *prometheus.HistogramVec
}

func newLatencies(service string) latencies {
	prefix := "alpes_" + service + "_inbox_"
	return latencies{
		apply: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    prefix + "apply_duration_seconds",
			Help:    "Duration of each committed apply transaction (a batch, or a run of it), from BEGIN to COMMIT, by source topic of its messages.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"topic"}),
		commitToApply: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    prefix + "commit_to_apply_seconds",
			Help:    "Per message applied, from its source transaction's commit to the commit that applied it here (clocks of two hosts), by topic.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"topic"}),
	}
}

// observe records one committed transaction that began at begun and
// committed at committed, with its fresh deliveries.
func (l latencies) observe(begun, committed time.Time, ds, applied []*delivery) {
	took := committed.Sub(begun).Seconds()
	seen := map[string]bool{}
	for _, d := range ds {
		if !seen[d.msg.Topic] {
			seen[d.msg.Topic] = true
			l.apply.WithLabelValues(d.msg.Topic).Observe(took)
		}
	}
	for _, d := range applied {
		if d.committedAt.Valid && (d.disp == dispHandle || d.disp == dispSkip) {
			l.commitToApply.WithLabelValues(d.msg.Topic).Observe(max(0, committed.Sub(d.committedAt.Time).Seconds()))
		}
	}
}

// RegisterMetrics registers, in reg, every metric of the consumer, named
// alpes_<Subscription>_…: the counters of its Stats (the package's
// RegisterMetrics); the histograms
// inbox_apply_duration_seconds{topic} (each committed transaction) and
// inbox_commit_to_apply_seconds{topic} (source commit → applied, per
// message); and, when q is not nil, the gauge inbox_lag_seconds{topic},
// read from apply_progress at scrape time: seconds since the source commit
// of the newest message applied of each topic. The lag grows on a topic
// nothing is written to; it is the consumer's lag while messages flow.
// It returns an error when reg already holds metrics of these names.
func (c *Consumer) RegisterMetrics(reg prometheus.Registerer, q Querier) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("registering the metrics of consumer %s: %v", c.cfg.Subscription, p)
		}
	}()
	RegisterMetrics(reg, c.cfg.Subscription, c.Stats)
	reg.MustRegister(c.latencies.apply, c.latencies.commitToApply)
	if q != nil {
		reg.MustRegister(&lagCollector{q: q, desc: prometheus.NewDesc(
			"alpes_"+c.cfg.Subscription+"_inbox_lag_seconds",
			"Seconds since the source commit of the newest message applied, per topic (apply_progress), read at scrape time.",
			[]string{"topic"}, nil)})
	}
	return nil
}

// lagScrapeTimeout bounds the read of apply_progress for one scrape.
const lagScrapeTimeout = 2 * time.Second

// lagCollector reads apply_progress at each scrape.
type lagCollector struct {
	q    Querier
	desc *prometheus.Desc
}

func (l *lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- l.desc }

// Collect sends one lag per topic of apply_progress; when the read fails,
// an invalid metric carries the error (the scrape serves the rest).
func (l *lagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), lagScrapeTimeout)
	defer cancel()
	progress, err := ReadProgress(ctx, l.q)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(l.desc, err)
		return
	}
	now := time.Now()
	for _, p := range progress {
		ch <- prometheus.MustNewConstMetric(l.desc, prometheus.GaugeValue, max(0, now.Sub(p.LastCommittedAt).Seconds()), p.Topic)
	}
}
