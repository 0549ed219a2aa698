package pulsarbroker

import (
	"net"
	"time"
)

// rateInterval is how often the broker turns counters into rates.
const rateInterval = time.Second

// meter counts events and keeps their rate over the last rate interval.
// Guarded by the lock of the topic that owns it.
type meter struct {
	count int64
	prev  int64
	rate  float64 // per second
}

func (m *meter) add(n int64) { m.count += n }

func (m *meter) tick(elapsed time.Duration) {
	m.rate = float64(m.count-m.prev) / elapsed.Seconds()
	m.prev = m.count
}

// sampleRates runs until the broker closes, updating every meter once per
// rate interval.
func (b *Broker) sampleRates() {
	t := time.NewTicker(rateInterval)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-b.done:
			return
		case now := <-t.C:
			for _, tp := range b.allTopics() {
				tp.tickMeters(now.Sub(last))
			}
			last = now
		}
	}
}

func (b *Broker) allTopics() []*topic {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]*topic, 0, len(b.topics))
	for _, t := range b.topics {
		out = append(out, t)
	}
	return out
}

func (t *topic) tickMeters(elapsed time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, m := range []*meter{&t.msgIn, &t.bytesIn, &t.msgOut, &t.bytesOut} {
		m.tick(elapsed)
	}
	for _, s := range t.subs {
		s.msgOut.tick(elapsed)
		s.bytesOut.tick(elapsed)
		for _, c := range s.consumers {
			c.msgOut.tick(elapsed)
			c.bytesOut.tick(elapsed)
		}
	}
}

// TopicStats is the subset of Pulsar's topic stats document that the
// admin API serves, with Pulsar's JSON names, so that code reading backlog
// and rates works against both brokers.
type TopicStats struct {
	MsgRateIn        float64                      `json:"msgRateIn"`
	MsgThroughputIn  float64                      `json:"msgThroughputIn"`
	MsgRateOut       float64                      `json:"msgRateOut"`
	MsgThroughputOut float64                      `json:"msgThroughputOut"`
	MsgInCounter     int64                        `json:"msgInCounter"`
	BytesInCounter   int64                        `json:"bytesInCounter"`
	MsgOutCounter    int64                        `json:"msgOutCounter"`
	BytesOutCounter  int64                        `json:"bytesOutCounter"`
	StorageSize      int64                        `json:"storageSize"`
	Publishers       []PublisherStats             `json:"publishers"`
	Subscriptions    map[string]SubscriptionStats `json:"subscriptions"`
}

// PublisherStats describes one connected producer.
type PublisherStats struct {
	ProducerName   string `json:"producerName"`
	ProducerID     uint64 `json:"producerId"`
	Address        string `json:"address"`
	ConnectedSince string `json:"connectedSince"`
}

// SubscriptionStats describes one subscription. MsgBacklog counts entries
// not yet acknowledged (a batch is one entry), as Pulsar does.
type SubscriptionStats struct {
	Type             string          `json:"type"`
	IsDurable        bool            `json:"isDurable"`
	MsgRateOut       float64         `json:"msgRateOut"`
	MsgThroughputOut float64         `json:"msgThroughputOut"`
	MsgOutCounter    int64           `json:"msgOutCounter"`
	MsgBacklog       int64           `json:"msgBacklog"`
	UnackedMessages  int64           `json:"unackedMessages"`
	Consumers        []ConsumerStats `json:"consumers"`
}

// ConsumerStats describes one consumer of a subscription.
type ConsumerStats struct {
	ConsumerName     string  `json:"consumerName"`
	AvailablePermits int64   `json:"availablePermits"`
	UnackedMessages  int64   `json:"unackedMessages"`
	MsgRateOut       float64 `json:"msgRateOut"`
	MsgThroughputOut float64 `json:"msgThroughputOut"`
	MsgOutCounter    int64   `json:"msgOutCounter"`
	Address          string  `json:"address"`
	ConnectedSince   string  `json:"connectedSince"`
}

func (t *topic) stats() TopicStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := TopicStats{
		MsgRateIn: t.msgIn.rate, MsgThroughputIn: t.bytesIn.rate,
		MsgRateOut: t.msgOut.rate, MsgThroughputOut: t.bytesOut.rate,
		MsgInCounter: t.msgIn.count, BytesInCounter: t.bytesIn.count,
		MsgOutCounter: t.msgOut.count, BytesOutCounter: t.bytesOut.count,
		StorageSize:   t.storageSize,
		Publishers:    []PublisherStats{},
		Subscriptions: make(map[string]SubscriptionStats, len(t.subs)),
	}
	for _, p := range t.producers {
		st.Publishers = append(st.Publishers, PublisherStats{
			ProducerName: p.name, ProducerID: p.id, Address: remoteAddr(p.conn.nc),
			ConnectedSince: p.since.UTC().Format(time.RFC3339Nano),
		})
	}
	for name, s := range t.subs {
		ss := SubscriptionStats{
			Type: s.subType.String(), IsDurable: s.durable,
			MsgRateOut: s.msgOut.rate, MsgThroughputOut: s.bytesOut.rate, MsgOutCounter: s.msgOut.count,
			MsgBacklog: s.backlog(), UnackedMessages: s.unacked,
			Consumers: []ConsumerStats{},
		}
		for _, c := range s.consumers {
			ss.Consumers = append(ss.Consumers, ConsumerStats{
				ConsumerName: c.name, AvailablePermits: max(c.permits, 0), UnackedMessages: c.unacked,
				MsgRateOut: c.msgOut.rate, MsgThroughputOut: c.bytesOut.rate, MsgOutCounter: c.msgOut.count,
				Address: remoteAddr(c.conn.nc), ConnectedSince: c.since.UTC().Format(time.RFC3339Nano),
			})
		}
		st.Subscriptions[name] = ss
	}
	return st
}

// add folds the stats of one partition into partitioned-topic totals.
func (st *TopicStats) add(p TopicStats) {
	st.MsgRateIn += p.MsgRateIn
	st.MsgThroughputIn += p.MsgThroughputIn
	st.MsgRateOut += p.MsgRateOut
	st.MsgThroughputOut += p.MsgThroughputOut
	st.MsgInCounter += p.MsgInCounter
	st.BytesInCounter += p.BytesInCounter
	st.MsgOutCounter += p.MsgOutCounter
	st.BytesOutCounter += p.BytesOutCounter
	st.StorageSize += p.StorageSize
	st.Publishers = append(st.Publishers, p.Publishers...)
	for name, ps := range p.Subscriptions {
		ss, ok := st.Subscriptions[name]
		if !ok {
			ss = SubscriptionStats{Type: ps.Type, IsDurable: ps.IsDurable, Consumers: []ConsumerStats{}}
		}
		ss.MsgRateOut += ps.MsgRateOut
		ss.MsgThroughputOut += ps.MsgThroughputOut
		ss.MsgOutCounter += ps.MsgOutCounter
		ss.MsgBacklog += ps.MsgBacklog
		ss.UnackedMessages += ps.UnackedMessages
		ss.Consumers = append(ss.Consumers, ps.Consumers...)
		st.Subscriptions[name] = ss
	}
}

func remoteAddr(nc net.Conn) string { return nc.RemoteAddr().String() }
