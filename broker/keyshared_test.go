package broker_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
)

// TestKeySharedKeyAffinityAndOrder runs three Key_Shared consumers, one of
// which leaves halfway, and checks that every key's messages arrive in
// order and that no key is ever delivered to two consumers at once.
func TestKeySharedKeyAffinityAndOrder(t *testing.T) {
	t.Parallel()
	c := newEnv(t).client(t)
	tp := topic(t)
	const keys, perKey = 16, 30
	opts := pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", Type: pulsar.KeyShared, ReceiverQueueSize: 10}
	consumers := []pulsar.Consumer{subscribe(t, c, opts), subscribe(t, c, opts)}
	leaving, err := c.Subscribe(opts)
	if err != nil {
		t.Fatal(err)
	}
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, BatcherBuilderType: pulsar.KeyBasedBatchBuilder})

	var (
		mu       sync.Mutex
		next     = map[string]int{} // next expected sequence per key
		holder   = map[string]int{} // consumer holding unacked messages of a key
		inflight = map[string]int{}
		received int
		allIn    = make(chan struct{})
	)
	check := func(who int, m pulsar.Message) {
		mu.Lock()
		defer mu.Unlock()
		k := m.Key()
		if h, ok := holder[k]; ok && inflight[k] > 0 && h != who {
			t.Errorf("key %s delivered to consumer %d while consumer %d holds it", k, who, h)
		}
		var seq int
		for _, ch := range strings.TrimPrefix(string(m.Payload()), k+"-") {
			seq = seq*10 + int(ch-'0')
		}
		// Redelivery may repeat messages (at least once), but a key's
		// messages never skip ahead of the next one expected.
		if seq > next[k] {
			t.Errorf("key %s: got %d before %d", k, seq, next[k])
		}
		if seq == next[k] {
			next[k]++
			if received++; received == keys*perKey {
				close(allIn)
			}
		}
		holder[k] = who
		inflight[k]++
	}
	acked := func(k string) {
		mu.Lock()
		inflight[k]--
		mu.Unlock()
	}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	consume := func(who int, cs pulsar.Consumer, limit int) {
		defer wg.Done()
		for n := 0; limit < 0 || n < limit; n++ {
			m, err := cs.Receive(ctx)
			if err != nil {
				return
			}
			check(who, m)
			acked(m.Key())
			cs.Ack(m)
		}
	}
	wg.Add(3)
	go consume(0, consumers[0], -1)
	go consume(1, consumers[1], -1)
	go func() {
		consume(2, leaving, 40)
		leaving.Close()
	}()
	sendKeyed(ctx, t, p, keys, 0, perKey)
	select {
	case <-allIn:
	case <-ctx.Done():
	}
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if received != keys*perKey {
		t.Fatalf("received %d distinct messages in order, want %d", received, keys*perKey)
	}
}
