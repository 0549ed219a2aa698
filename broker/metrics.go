package broker

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/alpes/alpes/internal/metrics"
)

// The broker's metric families, served at GET /metrics on the admin port
// as Pulsar serves its own there. They sum the figures of the topics'
// stats documents (TopicStats) over the topics the broker holds, each
// partition counted as a topic, at scrape time: a deleted topic's counts
// leave the sums, which Prometheus reads as a counter reset.
var (
	descTopics        = prometheus.NewDesc("alpes_broker_topics", "Topics held, each partition of a partitioned topic counted as one.", nil, nil)
	descProducers     = prometheus.NewDesc("alpes_broker_producers", "Producers connected.", nil, nil)
	descSubscriptions = prometheus.NewDesc("alpes_broker_subscriptions", "Subscriptions of the topics held.", nil, nil)
	descConsumers     = prometheus.NewDesc("alpes_broker_consumers", "Consumers connected.", nil, nil)
	descMsgIn         = prometheus.NewDesc("alpes_broker_messages_in_total", "Messages producers sent that passed the checksum, duplicates included (msgInCounter).", nil, nil)
	descBytesIn       = prometheus.NewDesc("alpes_broker_bytes_in_total", "Bytes of those messages, checksum block included (bytesInCounter).", nil, nil)
	descMsgOut        = prometheus.NewDesc("alpes_broker_messages_out_total", "Messages dispatched to consumers (msgOutCounter).", nil, nil)
	descBytesOut      = prometheus.NewDesc("alpes_broker_bytes_out_total", "Bytes dispatched to consumers (bytesOutCounter).", nil, nil)
	descStorage       = prometheus.NewDesc("alpes_broker_storage_bytes", "Bytes of the stored entries (storageSize).", nil, nil)
	descBacklog       = prometheus.NewDesc("alpes_broker_backlog_bytes", "Bytes after each topic's slowest durable subscription's mark-delete position (backlogSize).", nil, nil)
)

// brokerCollector reads the broker's topics at each scrape.
type brokerCollector struct{ b *Broker }

func (c brokerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descTopics, descProducers, descSubscriptions, descConsumers,
		descMsgIn, descBytesIn, descMsgOut, descBytesOut, descStorage, descBacklog} {
		ch <- d
	}
}

func (c brokerCollector) Collect(ch chan<- prometheus.Metric) {
	var topics, producers, subs, consumers int
	var f TopicFigures
	for _, t := range c.b.allTopics() {
		st := t.stats()
		topics++
		producers += len(st.Publishers)
		subs += len(st.Subscriptions)
		for _, s := range st.Subscriptions {
			consumers += len(s.Consumers)
		}
		f.MsgInCounter += st.MsgInCounter
		f.BytesInCounter += st.BytesInCounter
		f.MsgOutCounter += st.MsgOutCounter
		f.BytesOutCounter += st.BytesOutCounter
		f.StorageSize += st.StorageSize
		f.BacklogSize += st.BacklogSize
	}
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge(descTopics, float64(topics))
	gauge(descProducers, float64(producers))
	gauge(descSubscriptions, float64(subs))
	gauge(descConsumers, float64(consumers))
	counter(descMsgIn, f.MsgInCounter)
	counter(descBytesIn, f.BytesInCounter)
	counter(descMsgOut, f.MsgOutCounter)
	counter(descBytesOut, f.BytesOutCounter)
	gauge(descStorage, float64(f.StorageSize))
	gauge(descBacklog, float64(f.BacklogSize))
}

// newMetrics returns the registry GET /metrics serves: the Go runtime's
// and the process's collectors (internal/metrics) and the broker's figures
// above.
func (b *Broker) newMetrics() *prometheus.Registry {
	reg := metrics.NewRegistry()
	reg.MustRegister(brokerCollector{b})
	return reg
}
