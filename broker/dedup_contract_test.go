package broker_test

import (
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
)

// What the relay relies on from broker-side deduplication, pinned on both
// brokers: state keyed by the registered producer name, surviving a
// reconnect and a topic unload, and handed back to a producer in
// PRODUCER_SUCCESS. Each test uses a namespace of its own with
// deduplication on, whatever the broker-wide default.

// isDuplicate reports whether a receipt is the one the broker gives a
// message it dropped as a duplicate: ledger and entry -1.
func isDuplicate(id pulsar.MessageID) bool { return id.LedgerID() == -1 && id.EntryID() == -1 }

// expectPayloads receives len(want) messages, acknowledging each, and
// checks their payloads in order.
func expectPayloads(t *testing.T, cs pulsar.Consumer, want ...string) {
	t.Helper()
	for _, w := range want {
		m := receive(t, cs)
		if got := string(m.Payload()); got != w {
			t.Fatalf("got %q, want %q", got, w)
		}
		cs.Ack(m)
	}
}

func TestDeduplicationKeyedByProducerName(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ns := e.namespace(t, ptr(true))
	c := e.client(t)
	tp := topicIn(t, ns)
	cs := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s"})
	named := func(name string) pulsar.ProducerOptions {
		return pulsar.ProducerOptions{Topic: tp, Name: name, DisableBatching: true}
	}
	alpha, err := c.CreateProducer(named("alpha"))
	if err != nil {
		t.Fatal(err)
	}
	send(t, alpha, withSeq("alpha-0", 0), withSeq("alpha-1", 1), withSeq("alpha-2", 2))
	alpha.Close()

	// The same name again, on a new producer: the broker still knows
	// sequence id 2 for it and drops a re-send.
	alpha = producer(t, c, named("alpha"))
	if ids := send(t, alpha, withSeq("alpha-2 again", 2)); !isDuplicate(ids[0]) {
		t.Fatalf("re-send under the same name stored as %v", ids[0])
	}
	// Another name has sequence ids of its own, even while alpha is
	// connected: the same numbers are new messages.
	beta := producer(t, c, named("beta"))
	for i, id := range send(t, beta, withSeq("beta-1", 1), withSeq("beta-2", 2)) {
		if isDuplicate(id) {
			t.Fatalf("beta's message %d taken for a duplicate of alpha's", i+1)
		}
	}
	send(t, alpha, withSeq("alpha-3", 3))
	expectPayloads(t, cs, "alpha-0", "alpha-1", "alpha-2", "beta-1", "beta-2", "alpha-3")
	expectNothing(t, cs, 200*time.Millisecond)
}

// TestLastSequenceIDAcrossReconnects pins what Producer.LastSequenceID
// reports: -1 for a new producer, whatever the broker knows of its name
// (pulsar-client-go v0.19 counts only the receipts of its own session),
// then the sequence id of its last receipt. The broker's last sequence id
// for the name (PRODUCER_SUCCESS) shows in the automatic numbering: a
// producer reconnecting under a known name continues after it.
func TestLastSequenceIDAcrossReconnects(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ns := e.namespace(t, ptr(true))
	reconnected := newReconnectWatch()
	c := e.client(t, reconnected.option)
	tp := topicIn(t, ns)
	opts := pulsar.ProducerOptions{Topic: tp, Name: "relay", DisableBatching: true}
	p, err := c.CreateProducer(opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.LastSequenceID(); got != -1 {
		t.Fatalf("fresh producer name: LastSequenceID %d, want -1", got)
	}
	send(t, p, payloads("m-", 5)...)
	if got := p.LastSequenceID(); got != 4 {
		t.Fatalf("after 5 automatic sends: LastSequenceID %d, want 4", got)
	}

	// The broker drops the producer (an unload): the client reconnects
	// and goes on numbering where it was.
	e.unload(t, tp)
	reconnected.wait(t)
	send(t, p, payloads("after-unload-", 1)...)
	if got := p.LastSequenceID(); got != 5 {
		t.Fatalf("after reconnecting: LastSequenceID %d, want 5", got)
	}
	p.Close()

	// A new producer under the same name starts at -1, and its first
	// automatic sequence id follows the broker's last one (5).
	p = producer(t, c, opts)
	if got := p.LastSequenceID(); got != -1 {
		t.Fatalf("known producer name: LastSequenceID %d before any send, want -1", got)
	}
	ids := send(t, p, payloads("next-", 1)...)
	if got := p.LastSequenceID(); got != 6 || isDuplicate(ids[0]) {
		t.Fatalf("first send under a known name: sequence id %d (receipt %v), want 6", got, ids[0])
	}
}

// TestDeduplicationSurvivesTopicUnload: Pulsar reloads an unloaded topic
// from storage, its deduplication state and cursors with it.
func TestDeduplicationSurvivesTopicUnload(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ns := e.namespace(t, ptr(true))
	reconnected := newReconnectWatch()
	c := e.client(t, reconnected.option)
	tp := topicIn(t, ns)
	cs := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", AckWithResponse: true})
	opts := pulsar.ProducerOptions{Topic: tp, Name: "relay", DisableBatching: true}
	p, err := c.CreateProducer(opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		send(t, p, withSeq("m-"+itoa(i), int64(i)))
	}
	for i := range 3 {
		m := receive(t, cs)
		if string(m.Payload()) != "m-"+itoa(i) {
			t.Fatalf("got %q, want m-%d", m.Payload(), i)
		}
		if err := cs.Ack(m); err != nil {
			t.Fatal(err)
		}
	}

	e.unload(t, tp)
	reconnected.wait(t)
	// The connected producer reconnected; its re-send is still a duplicate.
	if ids := send(t, p, withSeq("m-4 again", 4)); !isDuplicate(ids[0]) {
		t.Fatalf("re-send after unload stored as %v", ids[0])
	}
	p.Close()
	p = producer(t, c, opts)
	if ids := send(t, p, withSeq("m-3 again", 3), withSeq("m-5", 5)); !isDuplicate(ids[0]) || isDuplicate(ids[1]) {
		t.Fatalf("new producer after unload: receipts %v", ids)
	}
	// The subscription resumes, in order and without a gap, from no later
	// than the first message not acknowledged. Pulsar persists a
	// subscription's acknowledgements lazily (its mark-delete rate limit),
	// so after an unload messages already acknowledged may come again, as
	// may those received but not acknowledged: at least once, never lost.
	next := 3
	for next < 6 {
		m := receive(t, cs)
		n := int(m.Payload()[len(m.Payload())-1] - '0')
		if n > next {
			t.Fatalf("after unload got %q before m-%d: a message was skipped", m.Payload(), next)
		}
		if n == next {
			next++
		}
		cs.Ack(m)
	}
}
