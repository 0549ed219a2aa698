package broker_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
)

// keyTracker checks, as Key_Shared consumers receive and acknowledge, the
// subscription's promises: a key is held by one consumer at a time (no
// consumer receives a key while another holds unacknowledged messages of
// it); each key's messages arrive in order, none skipped; an acknowledged
// message never comes again; and a consumer that leaves hands what it had
// not acknowledged to the next holder, from its first such message on.
type keyTracker struct {
	t        *testing.T
	mu       sync.Mutex
	held     map[string]map[int]int // key -> consumer -> messages held unacknowledged
	heldSeqs map[int][]keyedSeq     // consumer -> what it holds
	next     map[string]int         // key -> sequence expected next
	acked    map[keyedSeq]bool
	seen     map[keyedSeq]bool
	per      map[int]int // consumer -> messages it received
	// holding makes the consumers keep what they receive unacknowledged,
	// so that membership changes meet keys in flight.
	holding atomic.Bool
}

type keyedSeq struct {
	key string
	seq int
}

func newKeyTracker(t *testing.T) *keyTracker {
	return &keyTracker{t: t, held: map[string]map[int]int{}, heldSeqs: map[int][]keyedSeq{},
		next: map[string]int{}, acked: map[keyedSeq]bool{}, seen: map[keyedSeq]bool{}, per: map[int]int{}}
}

// parseKeyed reads a payload "<key>-<seq>".
func parseKeyed(t *testing.T, m pulsar.Message) keyedSeq {
	seq, err := strconv.Atoi(strings.TrimPrefix(string(m.Payload()), m.Key()+"-"))
	if err != nil {
		t.Errorf("payload %q of key %q: %v", m.Payload(), m.Key(), err)
	}
	return keyedSeq{m.Key(), seq}
}

// received records that consumer who got m, checking the promises.
func (k *keyTracker) received(who int, m pulsar.Message) {
	ks := parseKeyed(k.t, m)
	k.mu.Lock()
	defer k.mu.Unlock()
	for other, n := range k.held[ks.key] {
		if other != who && n > 0 {
			k.t.Errorf("key %s delivered to consumer %d while consumer %d holds %d of its messages", ks.key, who, other, n)
		}
	}
	if k.acked[ks] {
		k.t.Errorf("acknowledged message %s-%d delivered again", ks.key, ks.seq)
	}
	if ks.seq != k.next[ks.key] {
		k.t.Errorf("key %s: consumer %d got %d, want %d", ks.key, who, ks.seq, k.next[ks.key])
	}
	k.next[ks.key] = ks.seq + 1
	k.seen[ks] = true
	if k.held[ks.key] == nil {
		k.held[ks.key] = map[int]int{}
	}
	k.held[ks.key][who]++
	k.heldSeqs[who] = append(k.heldSeqs[who], ks)
	k.per[who]++
}

// release records that who acknowledged (or, leaving, gave up) all it
// holds. Call it before acknowledging, so that the broker cannot hand a
// key on before the tracker knows.
func (k *keyTracker) release(who int, leaving bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, ks := range k.heldSeqs[who] {
		k.held[ks.key][who]--
		if leaving {
			// Redelivered from the first message it had not acknowledged.
			k.next[ks.key] = min(k.next[ks.key], ks.seq)
		} else {
			k.acked[ks] = true
		}
	}
	k.heldSeqs[who] = nil
}

func (k *keyTracker) distinct() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.seen)
}

// consume receives until stop is closed (then leaves: gives up what it
// holds and closes the consumer) or ctx ends. Unless the tracker is
// holding, it acknowledges what it received by threes, and all it holds
// when nothing comes.
func (k *keyTracker) consume(ctx context.Context, who int, cs pulsar.Consumer, stop <-chan struct{}) {
	var held []pulsar.Message
	ackAll := func() {
		k.release(who, false)
		for _, m := range held {
			cs.Ack(m)
		}
		held = held[:0]
	}
	for {
		select {
		case <-stop:
			k.release(who, true)
			cs.Close()
			return
		default:
		}
		rctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		m, err := cs.Receive(rctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil: // idle: let go of what it holds
			if !k.holding.Load() {
				ackAll()
			}
			continue
		}
		k.received(who, m)
		if held = append(held, m); len(held) >= 3 && !k.holding.Load() {
			ackAll()
		}
	}
}

// TestKeySharedConsumersJoiningAndLeaving publishes in rounds while
// Key_Shared consumers join and leave between them, and checks the
// tracker's promises over every delivery, and that nothing is lost.
func TestKeySharedConsumersJoiningAndLeaving(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client(t)
	tp := topic(t)
	const keys, rounds, perRound = 40, 4, 3 // messages per key per round
	opts := pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", Type: pulsar.KeyShared, ReceiverQueueSize: 10}
	tr := newKeyTracker(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	stops := map[int]chan struct{}{}
	join := func(who int) {
		cs := subscribe(t, c, opts)
		stops[who] = make(chan struct{})
		wg.Add(1)
		go func() { defer wg.Done(); tr.consume(ctx, who, cs, stops[who]) }()
	}
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, DisableBatching: true})
	publish := func(round int) { sendKeyed(ctx, t, p, keys, round*perRound, (round+1)*perRound) }
	received := func(n int) {
		waitFor(t, itoa(n)+" messages received", func() bool { return tr.distinct() >= n })
	}
	// Each change comes while the consumers hold unacknowledged messages
	// of a round they are receiving (a quarter of it at least: keys that
	// no consumer holds never wait), and some of the round is still
	// queued; then they acknowledge again.
	const round = keys * perRound
	tr.holding.Store(true)
	join(0)
	publish(0)
	received(round / 4)
	join(1) // takes keys consumer 0 holds
	publish(1)
	tr.holding.Store(false)
	received(2 * round)
	tr.holding.Store(true)
	publish(2)
	received(2*round + round/4)
	join(2)
	tr.holding.Store(false)
	received(3 * round)
	tr.holding.Store(true)
	publish(3)
	received(3*round + round/4)
	close(stops[0]) // leaves holding messages
	tr.holding.Store(false)
	received(3*round + round/2)
	close(stops[1]) // leaves mid-round
	received(rounds * round)

	tr.mu.Lock()
	defer tr.mu.Unlock()
	for who := range 3 {
		if tr.per[who] == 0 {
			t.Errorf("consumer %d received nothing: its join changed nothing", who)
		}
	}
}
