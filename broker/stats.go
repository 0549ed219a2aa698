package broker

import (
	"net"
	"time"

	wirev1 "github.com/alpes/alpes/internal/pulsarwire/proto/pulsar/wire/v1"
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
	for _, p := range t.producers {
		p.msgIn.tick(elapsed)
		p.bytesIn.tick(elapsed)
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

// TopicStats is a topic's stats document as Pulsar's admin API serves it
// (GET .../stats): the fields tools read, with Pulsar's JSON names and
// meanings. Byte figures count a message as Pulsar does, with its checksum
// block (pulsarwire.Message.WireLen). Pulsar's fields for features the
// broker lacks (replication, compaction, offload, transactions, quotas)
// are left out rather than reported as zeros.
type TopicStats struct {
	TopicFigures
	Publishers          []PublisherStats             `json:"publishers"`
	Subscriptions       map[string]SubscriptionStats `json:"subscriptions"`
	DeduplicationStatus string                       `json:"deduplicationStatus"` // "Enabled" or "Disabled"
}

// TopicFigures are a topic's own figures, which a partitioned topic's
// stats sum over its partitions.
type TopicFigures struct {
	MsgRateIn        float64 `json:"msgRateIn"`
	MsgThroughputIn  float64 `json:"msgThroughputIn"`
	MsgRateOut       float64 `json:"msgRateOut"`
	MsgThroughputOut float64 `json:"msgThroughputOut"`
	// MsgInCounter and BytesInCounter count every message producers sent
	// that passed the checksum, including those dropped as duplicates.
	MsgInCounter      int64   `json:"msgInCounter"`
	BytesInCounter    int64   `json:"bytesInCounter"`
	MsgOutCounter     int64   `json:"msgOutCounter"`
	BytesOutCounter   int64   `json:"bytesOutCounter"`
	AverageMsgSize    float64 `json:"averageMsgSize"` // msgThroughputIn / msgRateIn, or 0
	MsgChunkPublished bool    `json:"msgChunkPublished"`
	StorageSize       int64   `json:"storageSize"`
	// BacklogSize is the bytes after the slowest durable subscription's
	// mark-delete position.
	BacklogSize       int64 `json:"backlogSize"`
	WaitingPublishers int   `json:"waitingPublishers"`
	// NonContiguousDeletedMessagesRanges sums the subscriptions' ranges of
	// messages acknowledged out of order.
	NonContiguousDeletedMessagesRanges int `json:"nonContiguousDeletedMessagesRanges"`
}

// PublisherStats describes one connected producer.
type PublisherStats struct {
	PublisherFigures
	ProducerID     uint64            `json:"producerId"`
	ProducerName   string            `json:"producerName"`
	AccessMode     string            `json:"accessMode"` // Shared, Exclusive, WaitForExclusive, ExclusiveWithFencing
	Address        string            `json:"address"`    // "/host:port", as Java prints it
	ConnectedSince string            `json:"connectedSince"`
	ClientVersion  string            `json:"clientVersion"`
	Metadata       map[string]string `json:"metadata"` // the producer's Properties; {} when none
}

// PublisherFigures are a producer's rates. They count every message it got
// a receipt for, duplicates included, as Pulsar's do.
type PublisherFigures struct {
	MsgRateIn       float64 `json:"msgRateIn"`
	MsgThroughputIn float64 `json:"msgThroughputIn"`
	AverageMsgSize  float64 `json:"averageMsgSize"`
}

// SubscriptionStats describes one subscription.
type SubscriptionStats struct {
	SubscriptionFigures
	// ActiveConsumerName is the consumer that receives, on Exclusive and
	// Failover subscriptions with consumers; absent otherwise.
	ActiveConsumerName string          `json:"activeConsumerName,omitempty"`
	Consumers          []ConsumerStats `json:"consumers"`
}

// SubscriptionFigures are a subscription's own figures. MsgBacklog counts
// entries not yet acknowledged (a batch is one entry), as Pulsar does;
// BacklogSize the bytes after the mark-delete position.
type SubscriptionFigures struct {
	Type                               string            `json:"type"`
	IsDurable                          bool              `json:"isDurable"`
	Durable                            bool              `json:"durable"` // Pulsar serves both names
	MsgRateOut                         float64           `json:"msgRateOut"`
	MsgThroughputOut                   float64           `json:"msgThroughputOut"`
	MsgOutCounter                      int64             `json:"msgOutCounter"`
	BytesOutCounter                    int64             `json:"bytesOutCounter"`
	MsgBacklog                         int64             `json:"msgBacklog"`
	MsgBacklogNoDelayed                int64             `json:"msgBacklogNoDelayed"`
	MsgDelayed                         int64             `json:"msgDelayed"`
	BacklogSize                        int64             `json:"backlogSize"`
	UnackedMessages                    int64             `json:"unackedMessages"`
	BlockedSubscriptionOnUnackedMsgs   bool              `json:"blockedSubscriptionOnUnackedMsgs"`
	NonContiguousDeletedMessagesRanges int               `json:"nonContiguousDeletedMessagesRanges"`
	SubscriptionProperties             map[string]string `json:"subscriptionProperties"`
}

// ConsumerStats describes one consumer of a subscription.
type ConsumerStats struct {
	ConsumerFigures
	Address        string            `json:"address"`
	ConnectedSince string            `json:"connectedSince"`
	ClientVersion  string            `json:"clientVersion"`
	Metadata       map[string]string `json:"metadata"` // the consumer's Properties; {} when none
}

// ConsumerFigures are a consumer's name and figures. UnackedMessages is 0
// on Exclusive and Failover subscriptions, where Pulsar does not track it.
type ConsumerFigures struct {
	ConsumerName     string  `json:"consumerName"`
	AvailablePermits int64   `json:"availablePermits"`
	UnackedMessages  int64   `json:"unackedMessages"`
	MsgRateOut       float64 `json:"msgRateOut"`
	MsgThroughputOut float64 `json:"msgThroughputOut"`
	MsgOutCounter    int64   `json:"msgOutCounter"`
	BytesOutCounter  int64   `json:"bytesOutCounter"`
	// BlockedConsumerOnUnackedMsgs is always false: the broker sets no
	// limit of unacknowledged messages per consumer.
	BlockedConsumerOnUnackedMsgs bool `json:"blockedConsumerOnUnackedMsgs"`
}

// stats returns the topic's stats document.
func (t *topic) stats() TopicStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := TopicStats{
		TopicFigures: TopicFigures{
			MsgRateIn: t.msgIn.rate, MsgThroughputIn: t.bytesIn.rate,
			MsgRateOut: t.msgOut.rate, MsgThroughputOut: t.bytesOut.rate,
			MsgInCounter: t.msgIn.count, BytesInCounter: t.bytesIn.count,
			MsgOutCounter: t.msgOut.count, BytesOutCounter: t.bytesOut.count,
			AverageMsgSize:    averageSize(t.bytesIn.rate, t.msgIn.rate),
			MsgChunkPublished: t.chunkPublished,
			StorageSize:       t.storageSize,
			BacklogSize:       t.backlogBytesLocked(),
		},
		Publishers:          []PublisherStats{},
		Subscriptions:       make(map[string]SubscriptionStats, len(t.subs)),
		DeduplicationStatus: "Disabled",
	}
	if t.b.deduplicationEnabled(t.name) {
		st.DeduplicationStatus = "Enabled"
	}
	for _, p := range t.producers {
		st.Publishers = append(st.Publishers, p.stats())
	}
	for name, s := range t.subs {
		ss := s.stats()
		st.Subscriptions[name] = ss
		st.NonContiguousDeletedMessagesRanges += ss.NonContiguousDeletedMessagesRanges
	}
	return st
}

// stats describes the producer. Caller holds the topic's mutex.
func (p *producer) stats() PublisherStats {
	return PublisherStats{
		PublisherFigures: PublisherFigures{
			MsgRateIn: p.msgIn.rate, MsgThroughputIn: p.bytesIn.rate,
			AverageMsgSize: averageSize(p.bytesIn.rate, p.msgIn.rate),
		},
		ProducerID: p.id, ProducerName: p.name, AccessMode: p.accessMode.String(),
		Address: javaAddr(p.conn.nc), ConnectedSince: p.since.UTC().Format(time.RFC3339Nano),
		ClientVersion: p.conn.clientVersion, Metadata: nonNil(p.metadata),
	}
}

// stats describes the subscription and its consumers. Caller holds the
// topic's mutex.
func (s *subscription) stats() SubscriptionStats {
	backlog, delayed := s.backlog(), int64(len(s.delayed))
	ss := SubscriptionStats{
		SubscriptionFigures: SubscriptionFigures{
			Type: s.subType.String(), IsDurable: s.durable, Durable: s.durable,
			MsgRateOut: s.msgOut.rate, MsgThroughputOut: s.bytesOut.rate,
			MsgOutCounter: s.msgOut.count, BytesOutCounter: s.bytesOut.count,
			MsgBacklog: backlog, MsgBacklogNoDelayed: backlog - delayed, MsgDelayed: delayed,
			BacklogSize:                        s.topic.bytesAfter(s.markDelete),
			UnackedMessages:                    s.unackedForStats(s.unacked),
			NonContiguousDeletedMessagesRanges: countRuns(s.acked),
			SubscriptionProperties:             map[string]string{},
		},
		Consumers: []ConsumerStats{},
	}
	if s.active != nil && (s.subType == wirev1.CommandSubscribe_Exclusive || s.subType == wirev1.CommandSubscribe_Failover) {
		ss.ActiveConsumerName = s.active.name
	}
	for _, c := range s.consumers {
		cs := c.stats()
		cs.UnackedMessages = s.unackedForStats(cs.UnackedMessages)
		ss.Consumers = append(ss.Consumers, cs)
	}
	return ss
}

// unackedForStats is n as Pulsar reports unacknowledged messages: it
// tracks them on Shared and Key_Shared subscriptions only, and reports 0
// on Exclusive and Failover ones.
func (s *subscription) unackedForStats(n int64) int64 {
	if s.subType == wirev1.CommandSubscribe_Shared || s.subType == wirev1.CommandSubscribe_Key_Shared {
		return n
	}
	return 0
}

// stats describes the consumer. Caller holds the topic's mutex.
func (c *consumer) stats() ConsumerStats {
	return ConsumerStats{
		ConsumerFigures: ConsumerFigures{
			ConsumerName: c.name, AvailablePermits: max(c.permits, 0), UnackedMessages: c.unacked,
			MsgRateOut: c.msgOut.rate, MsgThroughputOut: c.bytesOut.rate,
			MsgOutCounter: c.msgOut.count, BytesOutCounter: c.bytesOut.count,
		},
		Address: javaAddr(c.conn.nc), ConnectedSince: c.since.UTC().Format(time.RFC3339Nano),
		ClientVersion: c.conn.clientVersion, Metadata: nonNil(c.metadata),
	}
}

// backlogBytesLocked returns the bytes after the mark-delete position of
// the slowest durable subscription, or 0 without one. Caller holds t.mu.
func (t *topic) backlogBytesLocked() int64 {
	slowest, found := int64(0), false
	for _, s := range t.subs {
		if s.durable && (!found || s.markDelete < slowest) {
			slowest, found = s.markDelete, true
		}
	}
	if !found {
		return 0
	}
	return t.bytesAfter(slowest)
}

// bytesAfter returns the stored bytes of the readable entries after id.
// Caller holds t.mu.
func (t *topic) bytesAfter(id int64) int64 {
	last, first := t.entry(t.readable-1), t.entry(max(id+1, t.firstID))
	if last == nil || first == nil || first.id > last.id {
		return 0
	}
	return last.endBytes - first.endBytes + first.storedBytes()
}

// countRuns returns the number of runs of consecutive ids in the set: the
// ranges of entries acknowledged beyond the mark-delete position.
func countRuns(ids map[int64]struct{}) int {
	runs := 0
	for id := range ids {
		if _, joined := ids[id-1]; !joined {
			runs++
		}
	}
	return runs
}

func averageSize(bytesRate, msgRate float64) float64 {
	if msgRate == 0 {
		return 0
	}
	return bytesRate / msgRate
}

// keyValues turns a command's key-value list into a map.
func keyValues(kvs []*wirev1.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = kv.GetValue()
	}
	return m
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// javaAddr is a connection's remote address as Pulsar reports it (Java's
// InetSocketAddress.toString of an unresolved host: "/host:port").
func javaAddr(nc net.Conn) string { return "/" + nc.RemoteAddr().String() }
