package broker_test

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
)

func TestPatternConsumer(t *testing.T) {
	t.Parallel()
	c := newEnv(t).client(t)
	prefix := topic(t)
	p1 := producer(t, c, pulsar.ProducerOptions{Topic: prefix + "-a"})
	p2 := producer(t, c, pulsar.ProducerOptions{Topic: prefix + "-b"})
	short := strings.TrimPrefix(prefix, "persistent://public/default/")
	cs := subscribe(t, c, pulsar.ConsumerOptions{
		TopicsPattern:               "persistent://public/default/" + regexp.QuoteMeta(short) + "-.*",
		SubscriptionName:            "s",
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest,
	})
	send(t, p1, payloads("a", 1)...)
	send(t, p2, payloads("b", 1)...)
	got := map[string]bool{}
	for range 2 {
		got[string(receive(t, cs).Payload())] = true
	}
	if !got["a0"] || !got["b0"] {
		t.Fatalf("pattern consumer got %v", got)
	}
}

func TestChunkedMessages(t *testing.T) {
	t.Parallel()
	c := newEnv(t).client(t)
	tp := topic(t)
	cs := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s"})
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, DisableBatching: true, EnableChunking: true,
		ChunkMaxMessageSize: 100 << 10})
	big := bytes.Repeat([]byte("0123456789"), 100_000) // 1 MB in 10 chunks
	send(t, p, &pulsar.ProducerMessage{Payload: big})
	if got := receive(t, cs).Payload(); !bytes.Equal(got, big) {
		t.Fatalf("reassembled %d bytes, want %d", len(got), len(big))
	}
}

func TestDelayedDelivery(t *testing.T) {
	t.Parallel()
	c := newEnv(t).client(t)
	tp := topic(t)
	cs := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", Type: pulsar.Shared})
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, DisableBatching: true})
	// Pulsar's default delayed delivery is not strict: it may deliver a
	// message up to delayedDeliveryTickTimeMillis (1s) before its time,
	// and delivers at once one due within that tick. The delay is well
	// beyond the tick, and the bound below allows for it. (The embedded
	// broker is strict: it never delivers early.)
	const delay, tick = 2 * time.Second, time.Second
	sent := time.Now()
	send(t, p, &pulsar.ProducerMessage{Payload: []byte("later"), DeliverAfter: delay})
	send(t, p, &pulsar.ProducerMessage{Payload: []byte("now")})
	if got := string(receive(t, cs).Payload()); got != "now" {
		t.Fatalf("first message %q, want the undelayed one", got)
	}
	m := receive(t, cs)
	if string(m.Payload()) != "later" {
		t.Fatalf("second message %q", m.Payload())
	}
	// A correctness property, not a performance assertion: the broker
	// must hold the message back for its delay, less Pulsar's tick.
	if waited := time.Since(sent); waited < delay-tick {
		t.Fatalf("delayed message delivered after %v, before its %v delay (less a %v tick)", waited, delay, tick)
	}
}

func TestNonDurableSubscriptionEndsWithItsConsumer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client(t)
	tp := topic(t)
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp})
	opts := pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "nd", SubscriptionMode: pulsar.NonDurable}
	cs, err := c.Subscribe(opts)
	if err != nil {
		t.Fatal(err)
	}
	send(t, p, payloads("m-", 1)...)
	if got := string(receive(t, cs).Payload()); got != "m-0" {
		t.Fatalf("got %q", got)
	}
	cs.Close()
	// Pulsar removes it once the consumer's close is processed, which the
	// client does not wait for: the stats may show it for a moment.
	waitFor(t, "the non-durable subscription to end with its consumer", func() bool {
		var st topicStats
		e.admin(t, "GET", adminPath(tp)+"/stats", "", &st)
		_, ok := st.Subscriptions["nd"]
		return !ok
	})
}

func TestExclusiveProducerAccessMode(t *testing.T) {
	t.Parallel()
	c := newEnv(t).client(t)
	tp := topic(t)
	producer(t, c, pulsar.ProducerOptions{Topic: tp, ProducerAccessMode: pulsar.ProducerAccessModeExclusive})
	if _, err := c.CreateProducer(pulsar.ProducerOptions{Topic: tp}); err == nil {
		t.Fatal("a second producer joined a topic with an exclusive producer")
	}
}

func TestSubscriptionTypeChangesWhenNoConsumers(t *testing.T) {
	t.Parallel()
	c := newEnv(t).client(t)
	tp := topic(t)
	cs, err := c.Subscribe(pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", Type: pulsar.Exclusive})
	if err != nil {
		t.Fatal(err)
	}
	cs.Close()
	subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", Type: pulsar.Shared})
	subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", Type: pulsar.Shared})
}
