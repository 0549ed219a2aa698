package relay_test

import (
	"context"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/alpes/alpes/internal/metrics/metricstest"
	"github.com/alpes/alpes/migrations"
)

// TestMetricsNameEveryFigureWithItsUnit: /metrics serves the runtime's
// families and the relay's, named with their units, from the figures of
// /v1/lag, the slot's WAL safety included.
func TestMetricsNameEveryFigureWithItsUnit(t *testing.T) {
	ctx := context.Background()
	db, broker, rec := ordersToBroker(t)
	r := startStreamingRelay(t, broker, broker.source(db))
	insertEvents(ctx, t, db.PoolAs(t, migrations.ServiceRole("orders")), broker.topic, "order-1", 0, 5)
	waitFor(t, "5 events", func() bool { _, n := rec.count(); return n >= 5 })
	waitFor(t, "the slot read", func() bool { l := r.Lag(); return l[0].WALStatus != "" && l[0].SafeWALSize != nil })

	fams := metricstest.Scrape(t, r.http.URL+"/metrics", "")
	fams.Require(t, metricstest.Runtime)
	fams.Require(t, map[string]dto.MetricType{
		"alpes_relay_lag_bytes":                  dto.MetricType_GAUGE,
		"alpes_relay_lag_seconds":                dto.MetricType_GAUGE,
		"alpes_relay_in_flight_messages":         dto.MetricType_GAUGE,
		"alpes_relay_streaming":                  dto.MetricType_GAUGE,
		"alpes_relay_state":                      dto.MetricType_GAUGE,
		"alpes_relay_messages_published_total":   dto.MetricType_COUNTER,
		"alpes_relay_duplicates_dropped_total":   dto.MetricType_COUNTER,
		"alpes_relay_quarantined_total":          dto.MetricType_COUNTER,
		"alpes_relay_outbox_swept_total":         dto.MetricType_COUNTER,
		"alpes_relay_outbox_sweep_batches_total": dto.MetricType_COUNTER,
		"alpes_relay_session_failures_total":     dto.MetricType_COUNTER,
		"alpes_relay_slot_safe_wal_size_bytes":   dto.MetricType_GAUGE,
		"alpes_relay_slot_wal_status":            dto.MetricType_GAUGE,
	})
	for _, old := range []string{"alpes_relay_bytes_behind", "alpes_relay_seconds_behind", "alpes_relay_in_flight"} {
		if _, ok := fams[old]; ok {
			t.Errorf("/metrics still serves %s", old)
		}
	}
	if v, _ := fams.Value("alpes_relay_messages_published_total", "source", "orders"); v < 5 {
		t.Errorf("published: %v, want at least 5", v)
	}
	if v, _ := fams.Value("alpes_relay_state", "source", "orders", "state", "streaming"); v != 1 {
		t.Errorf("state streaming: %v, want 1", v)
	}
	lag := r.Lag()[0]
	if v, _ := fams.Value("alpes_relay_slot_wal_status", "source", "orders", "status", lag.WALStatus); v != 1 {
		t.Errorf("wal_status %s: %v, want 1", lag.WALStatus, v)
	}
	if v, ok := fams.Value("alpes_relay_slot_safe_wal_size_bytes", "source", "orders"); !ok || v <= 0 {
		t.Errorf("safe_wal_size: %v (found %v), want a positive size under max_slot_wal_keep_size", v, ok)
	}
}
