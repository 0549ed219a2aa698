package relay

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/alpes/alpes/internal/metrics"
)

// The relay's metric families, each labelled by source. They are read from
// the same figures as GET /v1/lag (Relay.Lag), once per scrape.
var (
	descLagBytes = prometheus.NewDesc("alpes_relay_lag_bytes",
		"WAL bytes not yet confirmed as published: current WAL position − confirmed flush position (bytes_behind of /v1/lag).",
		[]string{"source"}, nil)
	descLagSeconds = prometheus.NewDesc("alpes_relay_lag_seconds",
		"Age of the oldest transaction not yet confirmed as published; 0 when caught up (seconds_behind of /v1/lag).",
		[]string{"source"}, nil)
	descInFlight = prometheus.NewDesc("alpes_relay_in_flight_messages",
		"Messages sent and awaiting broker receipts.",
		[]string{"source"}, nil)
	descStreaming = prometheus.NewDesc("alpes_relay_streaming",
		"1 when this instance streams the source, else 0.",
		[]string{"source"}, nil)
	descState = prometheus.NewDesc("alpes_relay_state",
		"The source's state as /v1/lag reports it: 1 for the current state, 0 for the others.",
		[]string{"source", "state"}, nil)
	descPublished = prometheus.NewDesc("alpes_relay_messages_published_total",
		"Messages the broker receipted as new.",
		[]string{"source"}, nil)
	descDuplicates = prometheus.NewDesc("alpes_relay_duplicates_dropped_total",
		"Re-sent messages the broker receipted as duplicates.",
		[]string{"source"}, nil)
	descEntries = prometheus.NewDesc("alpes_relay_entries_sent_total",
		"Entries sent to the broker: a batch of one producer's messages, or a message alone.",
		[]string{"source"}, nil)
	descQuarantined = prometheus.NewDesc("alpes_relay_quarantined_total",
		"Outbox rows sent to the quarantine topic.",
		[]string{"source"}, nil)
	descSwept = prometheus.NewDesc("alpes_relay_outbox_swept_total",
		"Outbox rows deleted by the retention sweep.",
		[]string{"source"}, nil)
	descSweepBatches = prometheus.NewDesc("alpes_relay_outbox_sweep_batches_total",
		"DELETE transactions run by the retention sweep.",
		[]string{"source"}, nil)
	descSessionFailures = prometheus.NewDesc("alpes_relay_session_failures_total",
		"Streaming sessions that ended in an error the relay retried (streaming again from the confirmed position).",
		[]string{"source"}, nil)
	descSafeWAL = prometheus.NewDesc("alpes_relay_slot_safe_wal_size_bytes",
		"pg_replication_slots.safe_wal_size of the source's slot: WAL that can still be written before the slot is in danger of being invalidated. Absent when max_slot_wal_keep_size is unlimited, or before the slot is read.",
		[]string{"source"}, nil)
	descWALStatus = prometheus.NewDesc("alpes_relay_slot_wal_status",
		"pg_replication_slots.wal_status of the source's slot: 1 for the current status, 0 for the others (reserved, extended, unreserved, lost). Absent before the slot is read.",
		[]string{"source", "status"}, nil)
)

// walStatuses are the values of pg_replication_slots.wal_status.
var walStatuses = []string{"reserved", "extended", "unreserved", "lost"}

// states are the states a source may be in (SourceLag.State).
var states = []string{StateStarting, StateWaiting, StateStreaming, StateLost, StateStopped, StateError}

// lagCollector serves the relay's figures per source at each scrape.
type lagCollector struct{ r *Relay }

func (c lagCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLagBytes, descLagSeconds, descInFlight, descStreaming, descState,
		descPublished, descDuplicates, descEntries, descQuarantined, descSwept, descSweepBatches, descSessionFailures, descSafeWAL, descWALStatus} {
		ch <- d
	}
}

func (c lagCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v int64, source string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), source)
	}
	for _, l := range c.r.Lag() {
		gauge(descLagBytes, float64(l.BytesBehind), l.Source)
		gauge(descLagSeconds, l.SecondsBehind, l.Source)
		gauge(descInFlight, float64(l.InFlight), l.Source)
		gauge(descStreaming, oneIf(l.State == StateStreaming), l.Source)
		for _, s := range states {
			gauge(descState, oneIf(l.State == s), l.Source, s)
		}
		counter(descPublished, l.MessagesPublished, l.Source)
		counter(descDuplicates, l.DuplicatesDropped, l.Source)
		counter(descEntries, l.EntriesSent, l.Source)
		counter(descQuarantined, l.Quarantined, l.Source)
		counter(descSwept, l.OutboxSwept, l.Source)
		counter(descSweepBatches, l.OutboxSweepBatches, l.Source)
		counter(descSessionFailures, l.SessionFailures, l.Source)
		if l.SafeWALSize != nil {
			gauge(descSafeWAL, float64(*l.SafeWALSize), l.Source)
		}
		if l.WALStatus != "" {
			for _, s := range walStatuses {
				gauge(descWALStatus, oneIf(l.WALStatus == s), l.Source, s)
			}
		}
	}
}

func oneIf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// newMetrics returns the registry /metrics serves: the Go runtime's and
// the process's collectors (internal/metrics) and the relay's figures per
// source (see the desc* variables above).
func (r *Relay) newMetrics() *prometheus.Registry {
	reg := metrics.NewRegistry()
	reg.MustRegister(lagCollector{r})
	return reg
}
