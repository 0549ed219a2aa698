package broker_test

import (
	"log/slog"
	"testing"

	"github.com/apache/pulsar-client-go/pulsar"
	dto "github.com/prometheus/client_model/go"

	"github.com/alpes/alpes/broker/brokertest"
	"github.com/alpes/alpes/internal/metrics/metricstest"
	"github.com/alpes/alpes/internal/pulsarslog"
)

// TestMetricsOnTheAdminPort: the embedded broker serves Prometheus metrics
// at GET /metrics on its admin port, as Pulsar does, without the token
// the admin API requires: the runtime's families and its own figures,
// which count what went through it.
func TestMetricsOnTheAdminPort(t *testing.T) {
	cfg := brokertest.EmbeddedConfig()
	cfg.AuthToken = "s3cret"
	b := brokertest.StartEmbedded(t, cfg)
	c, err := pulsar.NewClient(pulsar.ClientOptions{
		URL: b.ServiceURL, Authentication: pulsar.NewAuthenticationToken("s3cret"),
		Logger: pulsarslog.New(slog.New(slog.DiscardHandler)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	tp := topic(t)
	cs := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s"})
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, DisableBatching: true})
	send(t, p, payloads("m-", 3)...)
	for range 3 {
		cs.Ack(receive(t, cs))
	}

	fams := metricstest.Scrape(t, b.AdminURL+"/metrics", "")
	fams.Require(t, metricstest.Runtime)
	fams.Require(t, map[string]dto.MetricType{
		"alpes_broker_topics":             dto.MetricType_GAUGE,
		"alpes_broker_producers":          dto.MetricType_GAUGE,
		"alpes_broker_subscriptions":      dto.MetricType_GAUGE,
		"alpes_broker_consumers":          dto.MetricType_GAUGE,
		"alpes_broker_messages_in_total":  dto.MetricType_COUNTER,
		"alpes_broker_bytes_in_total":     dto.MetricType_COUNTER,
		"alpes_broker_messages_out_total": dto.MetricType_COUNTER,
		"alpes_broker_bytes_out_total":    dto.MetricType_COUNTER,
		"alpes_broker_storage_bytes":      dto.MetricType_GAUGE,
		"alpes_broker_backlog_bytes":      dto.MetricType_GAUGE,
	})
	for _, w := range []struct {
		name string
		min  float64
	}{
		{"alpes_broker_topics", 1}, {"alpes_broker_producers", 1}, {"alpes_broker_consumers", 1},
		{"alpes_broker_messages_in_total", 3}, {"alpes_broker_messages_out_total", 3}, {"alpes_broker_storage_bytes", 1},
	} {
		if v, _ := fams.Value(w.name); v < w.min {
			t.Errorf("%s = %v, want at least %v", w.name, v, w.min)
		}
	}
}
