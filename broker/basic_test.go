package broker_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
)

func TestProduceConsume(t *testing.T) {
	for _, batching := range []bool{true, false} {
		t.Run(fmt.Sprintf("batching=%v", batching), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			c := e.client(t)
			tp := topic(t)
			cs := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s"})
			p := producer(t, c, pulsar.ProducerOptions{Topic: tp, DisableBatching: !batching})
			send(t, p, payloads("sync-", 5)...)

			// Asynchronous sends are batched together when batching is on.
			var wg sync.WaitGroup
			for i := range 20 {
				wg.Add(1)
				p.SendAsync(t.Context(), &pulsar.ProducerMessage{
					Payload:    []byte("async-" + itoa(i)),
					Key:        "k" + itoa(i%3),
					Properties: map[string]string{"n": itoa(i)},
				}, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
					if err != nil {
						t.Errorf("async send: %v", err)
					}
					wg.Done()
				})
			}
			if err := p.FlushWithCtx(t.Context()); err != nil {
				t.Fatal(err)
			}
			wg.Wait()

			for i := range 5 {
				m := receive(t, cs)
				if got, want := string(m.Payload()), "sync-"+itoa(i); got != want {
					t.Fatalf("message %d: %q, want %q", i, got, want)
				}
				cs.Ack(m)
			}
			for i := range 20 {
				m := receive(t, cs)
				if got, want := string(m.Payload()), "async-"+itoa(i); got != want {
					t.Fatalf("message %d: %q, want %q", i, got, want)
				}
				if m.Key() != "k"+itoa(i%3) || m.Properties()["n"] != itoa(i) {
					t.Fatalf("message %d: key %q properties %v", i, m.Key(), m.Properties())
				}
				if m.ProducerName() != p.Name() {
					t.Fatalf("producer name %q, want %q", m.ProducerName(), p.Name())
				}
				if err := cs.Ack(m); err != nil {
					t.Fatal(err)
				}
			}
			expectNothing(t, cs, 200*time.Millisecond)
		})
	}
}

func TestTokenAuthenticationWithClient(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.AuthToken = "s3cret"
	e := startBroker(t, cfg)
	c := e.client(t, func(o *pulsar.ClientOptions) { o.Authentication = pulsar.NewAuthenticationToken("s3cret") })
	tp := topic(t)
	cs := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s"})
	send(t, producer(t, c, pulsar.ProducerOptions{Topic: tp}), payloads("m-", 1)...)
	receive(t, cs)

	wrong := e.client(t, func(o *pulsar.ClientOptions) {
		o.Authentication = pulsar.NewAuthenticationToken("wrong")
		o.OperationTimeout = 2 * time.Second
	})
	if _, err := wrong.CreateProducer(pulsar.ProducerOptions{Topic: tp}); err == nil {
		t.Fatal("producer created with a wrong token")
	}
}
