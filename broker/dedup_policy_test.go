package broker_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
)

// Deduplication policies, set through the admin API on a namespace of the
// test's own, so that they run on both brokers whatever the broker-wide
// default: a namespace's policy overrides the broker's, a topic's
// overrides its namespace's.

// expectStored sends the messages and checks that the consumer receives
// exactly the payloads want, in order.
func expectStored(t *testing.T, p pulsar.Producer, cs pulsar.Consumer, msgs []*pulsar.ProducerMessage, want ...string) {
	t.Helper()
	send(t, p, msgs...)
	for _, w := range want {
		m := receive(t, cs)
		if got := string(m.Payload()); got != w {
			t.Fatalf("got %q, want %q", got, w)
		}
		cs.Ack(m)
	}
	expectNothing(t, cs, 100*time.Millisecond)
}

func TestDeduplicationOff(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ns := e.namespace(t, ptr(false))
	c := e.client(t)
	tp := topicIn(t, ns)
	cs := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s"})
	opts := pulsar.ProducerOptions{Topic: tp, Name: "p", DisableBatching: true}
	p, err := c.CreateProducer(opts)
	if err != nil {
		t.Fatal(err)
	}
	expectStored(t, p, cs, []*pulsar.ProducerMessage{withSeq("a", 1), withSeq("b", 1)}, "a", "b")
	p.Close()

	// Without deduplication the broker keeps no sequence ids: a producer
	// reconnecting under the same name learns -1 and numbers from 0.
	p = producer(t, c, opts)
	expectStored(t, p, cs, []*pulsar.ProducerMessage{{Payload: []byte("auto")}}, "auto")
	if got := p.LastSequenceID(); got != 0 {
		t.Fatalf("first automatic sequence id after reconnecting: %d, want 0", got)
	}
}

func TestNamespaceDeduplicationPolicy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ns := e.namespace(t, nil)
	policy := "/admin/v2/namespaces/" + ns + "/deduplication"
	var on *bool
	if code := e.admin(t, "GET", policy, "", &on); code != http.StatusOK || on != nil {
		t.Fatalf("policy of a new namespace: %d %v, want 200 and none", code, on)
	}
	c := e.client(t)
	dups := []*pulsar.ProducerMessage{withSeq("a", 1), withSeq("dup", 1), withSeq("b", 2)}

	// A policy applies to the topics loaded after it is set.
	for _, enabled := range []bool{false, true} {
		e.mustAdmin(t, "POST", policy, strconv.FormatBool(enabled))
		on = nil
		if e.admin(t, "GET", policy, "", &on); on == nil || *on != enabled {
			t.Fatalf("policy stored as %v, want %v", on, enabled)
		}
		tp := topicIn(t, ns)
		cs := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s"})
		p := producer(t, c, pulsar.ProducerOptions{Topic: tp, Name: "p", DisableBatching: true})
		if enabled {
			expectStored(t, p, cs, dups, "a", "b")
		} else {
			expectStored(t, p, cs, dups, "a", "dup", "b")
		}
	}
	if code := e.admin(t, "POST", "/admin/v2/namespaces/public/no-such-namespace/deduplication", "true", nil); code != http.StatusNotFound {
		t.Fatalf("policy of a missing namespace: %d, want 404", code)
	}
}

func TestTopicDeduplicationPolicy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ns := e.namespace(t, ptr(false))
	c := e.client(t)
	tp := topicIn(t, ns)
	policy := adminPath(tp) + "/deduplicationEnabled"
	if code := e.admin(t, "POST", policy, "true", nil); code != http.StatusNotFound {
		t.Fatalf("policy of a missing topic: %d, want 404", code)
	}
	e.mustAdmin(t, "PUT", adminPath(tp), "")
	e.mustAdmin(t, "POST", policy, "true")
	// Pulsar stores topic policies asynchronously, and applies them to a
	// loaded topic asynchronously too: wait until the policy reads back,
	// then unload the topic so that it is loaded again with the policy.
	waitFor(t, "the topic policy to be stored", func() bool {
		var on *bool
		e.admin(t, "GET", policy, "", &on)
		return on != nil && *on
	})
	e.unload(t, tp)

	dups := []*pulsar.ProducerMessage{withSeq("a", 1), withSeq("dup", 1), withSeq("b", 2)}
	cs := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s"})
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, Name: "p", DisableBatching: true})
	expectStored(t, p, cs, dups, "a", "b")

	// Other topics of the namespace keep the namespace's policy (off).
	other := topicIn(t, ns)
	ocs := subscribe(t, c, pulsar.ConsumerOptions{Topic: other, SubscriptionName: "s"})
	op := producer(t, c, pulsar.ProducerOptions{Topic: other, Name: "p", DisableBatching: true})
	expectStored(t, op, ocs, dups, "a", "dup", "b")
}
