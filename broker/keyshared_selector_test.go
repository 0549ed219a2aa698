package broker_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
)

// Which consumer of a Key_Shared subscription receives which key, checked
// the same way on the embedded broker and on real Pulsar: both hash a key
// with Murmur3 and place consumers on a consistent-hash ring by their
// names, so consumers of the same names receive the same keys on both.

// delivery is one message as a consumer received it.
type delivery struct {
	who int // index of the consumer
	msg pulsar.Message
}

// key is what the message was placed by: its ordering key, else its key.
func (d delivery) key() string {
	if k := d.msg.OrderingKey(); k != "" {
		return k
	}
	return d.msg.Key()
}

// seq reads the sequence number at the end of the payload ("...-<seq>").
func (d delivery) seq(t *testing.T) int {
	p := string(d.msg.Payload())
	n, err := strconv.Atoi(p[strings.LastIndexByte(p, '-')+1:])
	if err != nil {
		t.Fatalf("payload %q: %v", p, err)
	}
	return n
}

// collect receives from every consumer at once until n messages have
// arrived, acknowledging each when ack is set, and fails the test if they
// do not arrive within receiveTimeout.
func collect(t *testing.T, consumers []pulsar.Consumer, n int, ack bool) []delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), receiveTimeout)
	defer cancel()
	got := make(chan delivery)
	var wg sync.WaitGroup
	for who, cs := range consumers {
		wg.Go(func() {
			for {
				m, err := cs.Receive(ctx)
				if err != nil {
					return
				}
				if ack {
					cs.Ack(m)
				}
				select {
				case got <- delivery{who: who, msg: m}:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	defer wg.Wait()
	defer cancel()
	var out []delivery
	for len(out) < n {
		select {
		case d := <-got:
			out = append(out, d)
		case <-ctx.Done():
			t.Fatalf("received %d messages, want %d", len(out), n)
		}
	}
	return out
}

// ownersOf maps each key to the consumer that received it, failing the
// test when a key went to two consumers or a key's messages came out of
// order.
func ownersOf(t *testing.T, ds []delivery) map[string]int {
	t.Helper()
	owner, next := map[string]int{}, map[string]int{}
	for _, d := range ds {
		k := d.key()
		if o, ok := owner[k]; ok && o != d.who {
			t.Errorf("key %s went to consumers %d and %d", k, o, d.who)
		}
		owner[k] = d.who
		if s := d.seq(t); s != next[k] {
			t.Errorf("key %s: consumer %d got message %d, want %d", k, d.who, s, next[k])
		}
		next[k]++
	}
	return owner
}

func keyNames(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%02d", i)
	}
	return keys
}

// subscribeNamed subscribes Key_Shared consumers of the given names, in
// that order.
func subscribeNamed(t *testing.T, c pulsar.Client, tp string, names ...string) []pulsar.Consumer {
	t.Helper()
	var cs []pulsar.Consumer
	for _, n := range names {
		cs = append(cs, keySharedConsumer(t, c, tp, n, nil))
	}
	return cs
}

// keySharedConsumer subscribes a Key_Shared consumer called name to
// subscription "s" of tp, asking for policy (nil: the client's default).
func keySharedConsumer(t *testing.T, c pulsar.Client, tp, name string, policy *pulsar.KeySharedPolicy) pulsar.Consumer {
	t.Helper()
	return subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", Type: pulsar.KeyShared,
		Name: name, KeySharedPolicy: policy})
}

// What Pulsar 4.0.8 does, recorded from it: both brokers must do the same.
var (
	// ringNames are the consumers of the ring tests, joining in this order.
	ringNames = []string{"ks-a", "ks-b", "ks-c"}
	// ringOwners3 and ringOwners2 say which consumer (index in ringNames)
	// receives key-00 to key-19 when the first three or two consumers
	// are subscribed.
	ringOwners3 = []int{1, 0, 0, 2, 2, 2, 0, 2, 2, 0, 1, 0, 2, 0, 1, 0, 1, 0, 2, 1}
	ringOwners2 = []int{1, 0, 0, 1, 0, 1, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 1}
	// placedOwners2 says which of the first two consumers receives each
	// message of TestKeySharedHashesOrderingKeyElseKeyElseProducer.
	placedOwners2 = []int{1, 1, 0, 0, 0, 1, 0, 1, 1, 1, 0, 1, 0, 1, 0, 1}
	// twinOwners2 says which of two consumers both called "ks-twin"
	// (0: the first to subscribe) receives key-00 to key-19.
	twinOwners2 = []int{1, 1, 0, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 0, 0}
	// rangeHashes are the hashes of key-00 to key-29 that sticky hash
	// ranges select by: Murmur3 modulo 65,536.
	rangeHashes = []int{54212, 28478, 58951, 34896, 42464, 63790, 19597, 2809, 31994, 20737,
		29164, 55576, 7360, 52553, 43679, 16682, 41653, 14423, 1976, 56655,
		13916, 860, 41833, 7226, 23547, 47350, 54708, 15520, 61634, 29410}
)

// TestKeySharedSpreadsKeysLikePulsar subscribes three named consumers and
// publishes three messages of each of 20 keys: every key goes to one
// consumer, in order, and the consumer is the one Pulsar chooses.
func TestKeySharedSpreadsKeysLikePulsar(t *testing.T) {
	t.Parallel()
	c := newEnv(t).client(t)
	tp := topic(t)
	consumers := subscribeNamed(t, c, tp, ringNames...)
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, DisableBatching: true})
	keys := keyNames(20)
	for i := range 3 {
		for _, k := range keys {
			send(t, p, &pulsar.ProducerMessage{Key: k, Payload: []byte(k + "-" + itoa(i))})
		}
	}
	owner := ownersOf(t, collect(t, consumers, 3*len(keys), true))
	var got []int
	for _, k := range keys {
		got = append(got, owner[k])
	}
	if !slices.Equal(got, ringOwners3) {
		t.Errorf("owners of %v:\n got %v\nwant %v (Pulsar's)", keys, got, ringOwners3)
	}
	for who := range consumers {
		if !slices.Contains(got, who) {
			t.Errorf("consumer %s received no key", ringNames[who])
		}
	}
}

// TestKeySharedHashesOrderingKeyElseKeyElseProducer checks what a message
// is placed by: its ordering key when it has one (whatever its key),
// else its key, else its producer's name and sequence id, so that keyless
// messages spread too.
func TestKeySharedHashesOrderingKeyElseKeyElseProducer(t *testing.T) {
	t.Parallel()
	c := newEnv(t).client(t)
	tp := topic(t)
	names := ringNames[:2]
	consumers := subscribeNamed(t, c, tp, names...)
	const producerName = "ks-producer"
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, DisableBatching: true, Name: producerName})
	const n = 16
	for i := range n {
		m := &pulsar.ProducerMessage{Payload: []byte("m-" + itoa(i))}
		if i%2 == 1 { // else keyless: placed by "ks-producer-<sequence id>"
			m.Key, m.OrderingKey = "same-key", "ordering-"+itoa(i)
		}
		send(t, p, m)
	}
	got := make([]int, n)
	for _, d := range collect(t, consumers, n, true) {
		got[d.seq(t)] = d.who
	}
	if !slices.Equal(got, placedOwners2) {
		t.Errorf("consumers of messages 0 to %d:\n got %v\nwant %v (Pulsar's)", n-1, got, placedOwners2)
	}
}

// stickyConsumer subscribes a sticky Key_Shared consumer owning the
// hash ranges given as start, end pairs.
func stickyConsumer(t *testing.T, c pulsar.Client, tp string, ranges ...int) (pulsar.Consumer, error) {
	t.Helper()
	return c.Subscribe(pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", Type: pulsar.KeyShared,
		KeySharedPolicy: &pulsar.KeySharedPolicy{Mode: pulsar.KeySharedPolicyModeSticky, HashRanges: ranges}})
}

// TestKeySharedStickyRangesByPulsarsHash gives two sticky consumers
// ranges with a gap between them: a range overlapping theirs is refused,
// each receives exactly the keys whose hash falls in its ranges, and the
// keys of the gap wait until a consumer covering it joins.
func TestKeySharedStickyRangesByPulsarsHash(t *testing.T) {
	t.Parallel()
	c := newEnv(t).client(t)
	tp := topic(t)
	ranges := [][2]int{{0, 20000}, {40001, 65535}, {20001, 40000}}
	var consumers []pulsar.Consumer
	for _, r := range ranges[:2] {
		cs, err := stickyConsumer(t, c, tp, r[0], r[1])
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cs.Close)
		consumers = append(consumers, cs)
	}
	if cs, err := stickyConsumer(t, c, tp, 19000, 21000); err == nil {
		cs.Close()
		t.Fatal("a sticky range overlapping another consumer's was accepted")
	}
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, DisableBatching: true})
	keys := keyNames(30)
	want := map[string]int{}
	inRanges := 0
	for i, k := range keys {
		h := rangeHashes[i]
		want[k] = slices.IndexFunc(ranges, func(r [2]int) bool { return r[0] <= h && h <= r[1] })
		if want[k] < 2 {
			inRanges++
		}
		send(t, p, &pulsar.ProducerMessage{Key: k, Payload: []byte(k + "-0")})
	}
	if inRanges == 0 || inRanges == len(keys) {
		t.Fatalf("%d of %d keys in the first two ranges: choose other keys", inRanges, len(keys))
	}
	first := ownersOf(t, collect(t, consumers, inRanges, true))
	gap, err := stickyConsumer(t, c, tp, ranges[2][0], ranges[2][1])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gap.Close)
	rest := ownersOf(t, collect(t, append(consumers, gap), len(keys)-inRanges, true))
	for i, k := range keys {
		got, ok := first[k]
		if !ok {
			got, ok = rest[k]
		}
		if !ok || got != want[k] {
			t.Errorf("key %s (hash %d) went to consumer %d (received: %v), want %d", k, rangeHashes[i], got, ok, want[k])
		}
	}
}

// TestKeySharedModeIsSetByFirstConsumer: while a subscription has
// consumers, a consumer of the other Key_Shared mode is refused; once they
// have all left, the next consumer chooses the mode.
func TestKeySharedModeIsSetByFirstConsumer(t *testing.T) {
	t.Parallel()
	c := newEnv(t).client(t)
	tp := topic(t)
	auto, err := c.Subscribe(pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", Type: pulsar.KeyShared})
	if err != nil {
		t.Fatal(err)
	}
	if cs, err := stickyConsumer(t, c, tp, 0, 65535); err == nil {
		cs.Close()
		t.Fatal("sticky consumer accepted on an auto-split subscription with consumers")
	}
	auto.Close()
	cs, err := stickyConsumer(t, c, tp, 0, 65535)
	if err != nil {
		t.Fatalf("sticky consumer refused once the auto-split consumers left: %v", err)
	}
	cs.Close()
}

// joining is a Key_Shared subscription of two consumers: the second
// joined while the first held an unacknowledged message (sequence 0) of
// every key, and then every key got another message (sequence 1).
type joining struct {
	first, joiner pulsar.Consumer
	held          []delivery // the first consumer's unacknowledged messages
	keys          []string
	moved         map[string]bool // the keys that Pulsar's ring gives the joiner
}

// startJoining sets up a joining subscription, its consumers asking for
// policy.
func startJoining(t *testing.T, policy *pulsar.KeySharedPolicy) *joining {
	t.Helper()
	c := newEnv(t).client(t)
	tp := topic(t)
	j := &joining{keys: keyNames(20), moved: map[string]bool{}}
	j.first = keySharedConsumer(t, c, tp, ringNames[0], policy)
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, DisableBatching: true})
	publish := func(seq int) {
		for _, k := range j.keys {
			send(t, p, &pulsar.ProducerMessage{Key: k, Payload: []byte(k + "-" + itoa(seq))})
		}
	}
	publish(0)
	j.held = collect(t, []pulsar.Consumer{j.first}, len(j.keys), false)
	j.joiner = keySharedConsumer(t, c, tp, ringNames[1], policy)
	for i, k := range j.keys {
		if ringOwners2[i] == 1 {
			j.moved[k] = true
		}
	}
	if len(j.moved) == 0 || len(j.moved) == len(j.keys) {
		t.Fatalf("the joiner takes %d of %d keys: choose other names or keys", len(j.moved), len(j.keys))
	}
	publish(1)
	return j
}

// TestKeySharedJoiningConsumerWaitsForEarlierDeliveries: the joiner
// receives the new messages of the keys it takes only once the first
// consumer has acknowledged the earlier ones; the keys the first consumer
// keeps flow meanwhile.
func TestKeySharedJoiningConsumerWaitsForEarlierDeliveries(t *testing.T) {
	t.Parallel()
	j := startJoining(t, nil)
	kept := collect(t, []pulsar.Consumer{j.first}, len(j.keys)-len(j.moved), true)
	for _, d := range kept {
		if j.moved[d.key()] {
			t.Errorf("the first consumer received %s of key %s, which moved to the joiner", d.msg.Payload(), d.key())
		}
	}
	expectNothing(t, j.joiner, 500*time.Millisecond)

	for _, d := range j.held {
		j.first.Ack(d.msg)
	}
	late := collect(t, []pulsar.Consumer{j.first, j.joiner}, len(j.moved), true)
	for _, d := range late {
		if d.who != 1 || !j.moved[d.key()] || d.seq(t) != 1 {
			t.Errorf("after the acknowledgements consumer %d received %s", d.who, d.msg.Payload())
		}
	}
}

// TestKeySharedOutOfOrderJoinerDoesNotWait: when the consumers allow
// out-of-order delivery, the joiner receives the new messages of its keys
// at once, while the first consumer still holds the earlier ones.
func TestKeySharedOutOfOrderJoinerDoesNotWait(t *testing.T) {
	t.Parallel()
	j := startJoining(t, &pulsar.KeySharedPolicy{AllowOutOfOrderDelivery: true})
	for _, d := range collect(t, []pulsar.Consumer{j.first, j.joiner}, len(j.keys), true) {
		want := 0
		if j.moved[d.key()] {
			want = 1
		}
		if d.who != want || d.seq(t) != 1 {
			t.Errorf("consumer %d received %s, want consumer %d to receive sequence 1", d.who, d.msg.Payload(), want)
		}
	}
}

// TestKeySharedAutoSplitRanges configures the broker as Pulsar with
// subscriptionKeySharedUseConsistentHashing=false: each joining consumer
// takes the lower half of the largest range, and when the consumer of the
// topmost range leaves, the range below takes it over. (Embedded only:
// the shared Pulsar keeps its default.)
func TestKeySharedAutoSplitRanges(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.KeySharedAutoSplitRanges = true
	c := startBroker(t, cfg).client(t)
	tp := topic(t)
	consumers := subscribeNamed(t, c, tp, ringNames...)
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, DisableBatching: true})
	keys := keyNames(len(rangeHashes))
	// check publishes a message of every key and checks who receives
	// it: consumer i owns the hashes up to ends[i] above the next lower
	// end.
	check := func(round int, consumers []pulsar.Consumer, ends []int) {
		t.Helper()
		for _, k := range keys {
			send(t, p, &pulsar.ProducerMessage{Key: k, Payload: []byte(k + "-" + itoa(round))})
		}
		for _, d := range collect(t, consumers, len(keys), true) {
			h := rangeHashes[slices.Index(keys, d.key())]
			want := -1
			for who, end := range ends {
				if h <= end && (want < 0 || end < ends[want]) {
					want = who
				}
			}
			if d.who != want {
				t.Errorf("round %d: key %s (hash %d) went to consumer %d, want %d", round, d.key(), h, d.who, want)
			}
		}
	}
	// ks-a: the whole range; ks-b: its lower half; ks-c: the lower half
	// of ks-b's, the first of two equal ranges.
	check(0, consumers, []int{65536, 32768, 16384})
	consumers[0].Close()
	check(1, consumers[1:], []int{65536, 16384})
}

// TestKeySharedLeavingConsumersKeysGoToItsSuccessor: a consumer leaves
// holding unacknowledged messages of its keys; the remaining consumer
// receives them again, each key's before its newer messages.
func TestKeySharedLeavingConsumersKeysGoToItsSuccessor(t *testing.T) {
	t.Parallel()
	c := newEnv(t).client(t)
	tp := topic(t)
	consumers := subscribeNamed(t, c, tp, ringNames[:2]...)
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, DisableBatching: true})
	keys := keyNames(20)
	publish := func(seq int) {
		for _, k := range keys {
			send(t, p, &pulsar.ProducerMessage{Key: k, Payload: []byte(k + "-" + itoa(seq))})
		}
	}
	publish(0)
	first := collect(t, consumers, len(keys), false)
	if got := ownersOf(t, first); len(got) != len(keys) {
		t.Fatalf("owners of %d keys, want %d", len(got), len(keys))
	}
	leaving := map[string]bool{}
	for i, k := range keys {
		leaving[k] = ringOwners2[i] == 1
	}
	consumers[1].Close()
	publish(1)
	// The remaining consumer gets the leaver's keys from their first
	// message, and a second message of its own keys.
	want := map[string][]int{}
	n := 0
	for _, k := range keys {
		want[k] = []int{1}
		if leaving[k] {
			want[k] = []int{0, 1}
		}
		n += len(want[k])
	}
	got := map[string][]int{}
	for _, d := range collect(t, consumers[:1], n, true) {
		got[d.key()] = append(got[d.key()], d.seq(t))
	}
	for _, k := range keys {
		if !slices.Equal(got[k], want[k]) {
			t.Errorf("key %s: the remaining consumer received messages %v, want %v", k, got[k], want[k])
		}
	}
}

// TestKeySharedSameNameConsumers: consumers of the same name are told
// apart on the ring by the lowest index free among them, so a consumer
// that takes the place of one that left, under the same name, receives
// exactly the keys the leaver had.
func TestKeySharedSameNameConsumers(t *testing.T) {
	t.Parallel()
	c := newEnv(t).client(t)
	tp := topic(t)
	twins := subscribeNamed(t, c, tp, "ks-twin", "ks-twin")
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, DisableBatching: true})
	keys := keyNames(20)
	round := func(seq int, consumers []pulsar.Consumer) []int {
		for _, k := range keys {
			send(t, p, &pulsar.ProducerMessage{Key: k, Payload: []byte(k + "-" + itoa(seq))})
		}
		owners := make([]int, len(keys))
		for _, d := range collect(t, consumers, len(keys), true) {
			owners[slices.Index(keys, d.key())] = d.who
		}
		return owners
	}
	if got := round(0, twins); !slices.Equal(got, twinOwners2) {
		t.Errorf("owners:\n got %v\nwant %v (Pulsar's)", got, twinOwners2)
	}
	twins[0].Close()
	// The newcomer, index 0 in the next round, takes the first twin's
	// place on the ring.
	newcomer := subscribeNamed(t, c, tp, "ks-twin")[0]
	if got := round(1, []pulsar.Consumer{newcomer, twins[1]}); !slices.Equal(got, twinOwners2) {
		t.Errorf("owners after the first twin was replaced:\n got %v\nwant %v", got, twinOwners2)
	}
}
