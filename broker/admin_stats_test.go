package broker_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
)

// TestTopicStatsFields compares the stats document field by field with
// what Pulsar 4.0.8 reports for the same topic: a named producer and a
// consumer with Properties, five messages and a duplicate, one message
// acknowledged.
func TestTopicStatsFields(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ns := e.namespace(t, ptr(true))
	c := e.client(t)
	tp := topicIn(t, ns)
	cs := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", Type: pulsar.Shared,
		Name: "worker-1", Properties: map[string]string{"role": "reader"}, AckWithResponse: true})
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, Name: "orders-1", DisableBatching: true,
		Properties: map[string]string{"app": "orders"}})
	send(t, p, payloads("m-", 5)...)
	// A resend of sequence id 1: deduplication drops it, and Pulsar still
	// counts it in msgInCounter and bytesInCounter. Same size as the others.
	dup := int64(1)
	send(t, p, &pulsar.ProducerMessage{Payload: []byte("m-9"), SequenceID: &dup})
	// A consumer without Properties, on a subscription at the end.
	subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "bare", Name: "solo", Type: pulsar.Failover})
	if err := cs.Ack(receive(t, cs)); err != nil {
		t.Fatal(err)
	}

	var doc map[string]json.RawMessage
	var st fullStats
	// Dispatch and the clients' flow permits reach the broker in the
	// background: wait until both consumers are settled.
	waitFor(t, "4 messages in the backlog pushed to worker-1, and solo's permits", func() bool {
		doc, st = e.stats(t, tp)
		s, bare := st.Subscriptions["s"], st.Subscriptions["bare"]
		return s.MsgBacklog == 4 && s.UnackedMessages == 4 && len(s.Consumers) == 1 && s.Consumers[0].UnackedMessages == 4 &&
			len(bare.Consumers) == 1 && bare.Consumers[0].AvailablePermits == 1000
	})
	requireFields(t, "topic", doc, "msgRateIn", "msgThroughputIn", "msgRateOut", "msgThroughputOut",
		"msgInCounter", "bytesInCounter", "msgOutCounter", "bytesOutCounter", "averageMsgSize",
		"msgChunkPublished", "storageSize", "backlogSize", "publishers", "waitingPublishers",
		"subscriptions", "deduplicationStatus", "nonContiguousDeletedMessagesRanges")

	perMessage := st.StorageSize / 5
	if st.StorageSize == 0 || st.StorageSize%5 != 0 {
		t.Fatalf("storageSize %d for five messages of one size", st.StorageSize)
	}
	if st.MsgInCounter != 6 || st.BytesInCounter != 6*perMessage {
		t.Errorf("msgInCounter %d, bytesInCounter %d: want 6 and %d (the duplicate counts)", st.MsgInCounter, st.BytesInCounter, 6*perMessage)
	}
	if st.MsgOutCounter != 5 || st.BytesOutCounter != st.StorageSize {
		t.Errorf("msgOutCounter %d, bytesOutCounter %d: want 5 and %d", st.MsgOutCounter, st.BytesOutCounter, st.StorageSize)
	}
	if st.DeduplicationStatus != "Enabled" || st.MsgChunkPublished || st.WaitingPublishers != 0 {
		t.Errorf("deduplicationStatus %q, msgChunkPublished %v, waitingPublishers %d", st.DeduplicationStatus, st.MsgChunkPublished, st.WaitingPublishers)
	}
	checkPublisher(t, doc, st, "orders-1", map[string]string{"app": "orders"})
	checkSubscription(t, doc, st.Subscriptions["s"], "Shared", 4*perMessage)
	checkConsumer(t, st.Subscriptions["s"], "worker-1", map[string]string{"role": "reader"}, 4, 5*perMessage)
	bare := st.Subscriptions["bare"]
	if bare.Type != "Failover" || bare.MsgBacklog != 0 || bare.ActiveConsumerName != "solo" {
		t.Errorf("subscription bare: %+v", bare)
	}
	checkConsumer(t, bare, "solo", map[string]string{}, 0, 0)

	// The embedded broker computes rates every second (Pulsar every minute
	// by default, too slow to wait for here): a message sent now shows in
	// the publisher's rate at the next tick, and for a second.
	if e.broker != nil {
		send(t, p, &pulsar.ProducerMessage{Payload: []byte("m-5")})
		waitFor(t, "a non-zero msgRateIn of the publisher", func() bool {
			var rates struct {
				Publishers []struct {
					MsgRateIn, MsgThroughputIn, AverageMsgSize float64
				}
			}
			e.admin(t, "GET", adminPath(tp)+"/stats", "", &rates)
			p := rates.Publishers
			return len(p) == 1 && p[0].MsgRateIn > 0 && p[0].AverageMsgSize == p[0].MsgThroughputIn/p[0].MsgRateIn
		})
	}
}

// fullStats is the part of the stats document the test reads.
type fullStats struct {
	MsgInCounter        int64                         `json:"msgInCounter"`
	BytesInCounter      int64                         `json:"bytesInCounter"`
	MsgOutCounter       int64                         `json:"msgOutCounter"`
	BytesOutCounter     int64                         `json:"bytesOutCounter"`
	StorageSize         int64                         `json:"storageSize"`
	MsgChunkPublished   bool                          `json:"msgChunkPublished"`
	WaitingPublishers   int                           `json:"waitingPublishers"`
	DeduplicationStatus string                        `json:"deduplicationStatus"`
	Publishers          []publisherStats              `json:"publishers"`
	Subscriptions       map[string]fullSubscriptStats `json:"subscriptions"`
}

type publisherStats struct {
	ProducerName   string            `json:"producerName"`
	ProducerID     *int64            `json:"producerId"`
	AccessMode     string            `json:"accessMode"`
	Address        string            `json:"address"`
	ConnectedSince string            `json:"connectedSince"`
	ClientVersion  string            `json:"clientVersion"`
	Metadata       map[string]string `json:"metadata"`
}

type fullSubscriptStats struct {
	Type                string              `json:"type"`
	IsDurable           bool                `json:"isDurable"`
	MsgBacklog          int64               `json:"msgBacklog"`
	MsgBacklogNoDelayed int64               `json:"msgBacklogNoDelayed"`
	BacklogSize         int64               `json:"backlogSize"`
	UnackedMessages     int64               `json:"unackedMessages"`
	MsgOutCounter       int64               `json:"msgOutCounter"`
	BytesOutCounter     int64               `json:"bytesOutCounter"`
	ActiveConsumerName  string              `json:"activeConsumerName"`
	Consumers           []fullConsumerStats `json:"consumers"`
}

type fullConsumerStats struct {
	ConsumerName                 string            `json:"consumerName"`
	Metadata                     map[string]string `json:"metadata"`
	UnackedMessages              int64             `json:"unackedMessages"`
	AvailablePermits             int64             `json:"availablePermits"`
	BlockedConsumerOnUnackedMsgs *bool             `json:"blockedConsumerOnUnackedMsgs"`
	MsgOutCounter                int64             `json:"msgOutCounter"`
	BytesOutCounter              int64             `json:"bytesOutCounter"`
	MsgRateOut                   *float64          `json:"msgRateOut"`
	MsgThroughputOut             *float64          `json:"msgThroughputOut"`
	Address                      string            `json:"address"`
	ConnectedSince               string            `json:"connectedSince"`
	ClientVersion                string            `json:"clientVersion"`
}

// stats returns a topic's stats document, raw and decoded.
func (e *env) stats(t *testing.T, topic string) (map[string]json.RawMessage, fullStats) {
	t.Helper()
	var doc map[string]json.RawMessage
	if code := e.admin(t, "GET", adminPath(topic)+"/stats", "", &doc); code != http.StatusOK {
		t.Fatalf("stats of %s: %d", topic, code)
	}
	raw, _ := json.Marshal(doc)
	var st fullStats
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	return doc, st
}

// requireFields fails the test for each named field the object lacks.
func requireFields(t *testing.T, what string, obj map[string]json.RawMessage, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, ok := obj[n]; !ok {
			t.Errorf("%s stats lack %q", what, n)
		}
	}
}

// object decodes a JSON object for requireFields.
func object(t *testing.T, raw json.RawMessage) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func checkPublisher(t *testing.T, doc map[string]json.RawMessage, st fullStats, name string, metadata map[string]string) {
	t.Helper()
	var raw []json.RawMessage
	json.Unmarshal(doc["publishers"], &raw)
	if len(raw) != 1 || len(st.Publishers) != 1 {
		t.Fatalf("publishers %s", doc["publishers"])
	}
	requireFields(t, "publisher", object(t, raw[0]), "producerName", "producerId", "accessMode", "msgRateIn",
		"msgThroughputIn", "averageMsgSize", "address", "connectedSince", "clientVersion", "metadata")
	p := st.Publishers[0]
	if p.ProducerName != name || p.ProducerID == nil || p.AccessMode != "Shared" || !maps(p.Metadata, metadata) {
		t.Errorf("publisher %+v: want %s, Shared, metadata %v", p, name, metadata)
	}
	checkConnection(t, "publisher", p.Address, p.ConnectedSince, p.ClientVersion)
}

func checkSubscription(t *testing.T, doc map[string]json.RawMessage, s fullSubscriptStats, typ string, backlogSize int64) {
	t.Helper()
	var subs map[string]json.RawMessage
	json.Unmarshal(doc["subscriptions"], &subs)
	requireFields(t, "subscription", object(t, subs["s"]), "type", "isDurable", "msgRateOut", "msgThroughputOut",
		"msgOutCounter", "bytesOutCounter", "msgBacklog", "msgBacklogNoDelayed", "msgDelayed", "backlogSize",
		"unackedMessages", "blockedSubscriptionOnUnackedMsgs", "nonContiguousDeletedMessagesRanges", "consumers")
	if s.Type != typ || !s.IsDurable || s.MsgBacklog != 4 || s.MsgBacklogNoDelayed != 4 || s.BacklogSize != backlogSize ||
		s.UnackedMessages != 4 || s.MsgOutCounter != 5 {
		t.Errorf("subscription %+v: want %s, durable, backlog 4 (%d bytes), 4 unacked, 5 out", s, typ, backlogSize)
	}
}

func checkConsumer(t *testing.T, s fullSubscriptStats, name string, metadata map[string]string, unacked, bytesOut int64) {
	t.Helper()
	if len(s.Consumers) != 1 {
		t.Fatalf("consumers %+v", s.Consumers)
	}
	c := s.Consumers[0]
	if c.ConsumerName != name || !maps(c.Metadata, metadata) || c.UnackedMessages != unacked || c.BytesOutCounter != bytesOut ||
		c.BlockedConsumerOnUnackedMsgs == nil || *c.BlockedConsumerOnUnackedMsgs || c.MsgRateOut == nil || c.MsgThroughputOut == nil {
		t.Errorf("consumer %+v: want %s, metadata %v, %d unacked, %d bytes out, not blocked", c, name, metadata, unacked, bytesOut)
	}
	// The client grants 1000 permits and tops them up only when half are
	// used: what it has not received is still available.
	if want := 1000 - c.MsgOutCounter; c.AvailablePermits != want {
		t.Errorf("consumer %s: %d available permits, want %d", name, c.AvailablePermits, want)
	}
	checkConnection(t, "consumer", c.Address, c.ConnectedSince, c.ClientVersion)
}

// checkConnection checks the fields that describe a client's connection:
// Java's "/host:port", an RFC 3339 time, the client's own version string.
func checkConnection(t *testing.T, what, address, since, version string) {
	t.Helper()
	if !strings.HasPrefix(address, "/") || !strings.Contains(address, ":") {
		t.Errorf("%s address %q, want /host:port", what, address)
	}
	if _, err := time.Parse(time.RFC3339Nano, since); err != nil {
		t.Errorf("%s connectedSince %q: %v", what, since, err)
	}
	if !strings.HasPrefix(version, "Pulsar-Go") {
		t.Errorf("%s clientVersion %q, want pulsar-client-go's", what, version)
	}
}

func maps(a, b map[string]string) bool {
	if len(a) != len(b) || a == nil {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestPartitionedStatsFields compares a partitioned topic's stats with
// Pulsar's: figures summed over the partitions, publishers and consumers
// merged by position (a merged publisher keeps only its figures, a merged
// consumer its name), and each partition's own stats with its publisher's
// Properties.
func TestPartitionedStatsFields(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ns := e.namespace(t, ptr(true))
	tp := topicIn(t, ns)
	e.mustAdmin(t, "PUT", adminPath(tp)+"/partitions", "3")
	t.Cleanup(func() { e.admin(t, "DELETE", adminPath(tp)+"/partitions?force=true", "", nil) })
	c := e.client(t)
	subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", Type: pulsar.Shared,
		Name: "worker-1", Properties: map[string]string{"role": "reader"}})
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, Name: "orders-1", DisableBatching: true,
		Properties: map[string]string{"app": "orders"}})
	const n = 6
	for i := range n {
		send(t, p, &pulsar.ProducerMessage{Key: "k" + itoa(i), Payload: []byte("m-" + itoa(i))})
	}

	var st struct {
		MsgInCounter  int64             `json:"msgInCounter"`
		Publishers    []json.RawMessage `json:"publishers"`
		Subscriptions map[string]struct {
			MsgBacklog      int64                        `json:"msgBacklog"`
			UnackedMessages int64                        `json:"unackedMessages"`
			Consumers       []map[string]json.RawMessage `json:"consumers"`
		} `json:"subscriptions"`
		Metadata struct {
			Partitions int `json:"partitions"`
		} `json:"metadata"`
		Partitions map[string]fullStats `json:"partitions"`
	}
	waitFor(t, "every message pushed to the consumer's partitions", func() bool {
		if code := e.admin(t, "GET", adminPath(tp)+"/partitioned-stats", "", &st); code != http.StatusOK {
			t.Fatalf("partitioned-stats: %d", code)
		}
		s := st.Subscriptions["s"]
		return s.UnackedMessages == n && len(s.Consumers) == 1 && string(s.Consumers[0]["availablePermits"]) == itoa(3000-n)
	})
	if st.MsgInCounter != n || st.Subscriptions["s"].MsgBacklog != n || st.Metadata.Partitions != 3 {
		t.Errorf("msgInCounter %d, backlog %d, partitions %d: want %d, %d, 3", st.MsgInCounter, st.Subscriptions["s"].MsgBacklog, st.Metadata.Partitions, n, n)
	}
	if len(st.Publishers) != 1 {
		t.Fatalf("publishers %s: want the three partitions' merged into one", st.Publishers)
	}
	merged := object(t, st.Publishers[0])
	requireFields(t, "merged publisher", merged, "msgRateIn", "msgThroughputIn", "averageMsgSize", "producerId")
	for _, absent := range []string{"producerName", "metadata", "address"} {
		if _, ok := merged[absent]; ok {
			t.Errorf("merged publisher %s has %q: Pulsar's has only figures", st.Publishers[0], absent)
		}
	}
	consumer := st.Subscriptions["s"].Consumers[0]
	if string(consumer["consumerName"]) != `"worker-1"` || string(consumer["unackedMessages"]) != itoa(n) {
		t.Errorf("merged consumer %v: want worker-1 with %d unacked", consumer, n)
	}
	if _, ok := consumer["metadata"]; ok {
		t.Errorf("merged consumer %v has metadata: Pulsar's has none", consumer)
	}
	if len(st.Partitions) != 3 {
		t.Fatalf("per-partition stats of %d partitions, want 3", len(st.Partitions))
	}
	for name, part := range st.Partitions {
		if len(part.Publishers) != 1 || part.Publishers[0].ProducerName != "orders-1" || !maps(part.Publishers[0].Metadata, map[string]string{"app": "orders"}) {
			t.Errorf("partition %s: publishers %+v", name, part.Publishers)
		}
	}
}
